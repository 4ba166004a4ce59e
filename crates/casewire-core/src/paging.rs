//! Pages of the lists ordered newest first (cases, evidence): keyset paging on the time and
//! the id, so a page stays right while records are added in front of it, and a large list
//! is never read whole.

use serde::Serialize;

use crate::CoreError;

/// The most items one page may hold.
pub const MAX_PAGE: usize = 1_000;

/// The items a page holds when the client does not say.
pub const DEFAULT_PAGE: usize = 50;

/// Which page: at most `limit` items after the cursor `after`, the previous page's
/// [`Listed::next_cursor`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListPage {
    /// The previous page's `next_cursor`; `None` starts with the newest.
    pub after: Option<String>,
    /// Most items returned, 1 to [`MAX_PAGE`]; `None` is [`DEFAULT_PAGE`].
    pub limit: Option<usize>,
}

/// A page of a list, and where the next one starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Listed<T> {
    /// The items, newest first.
    pub items: Vec<T>,
    /// Where the next page starts; `None` on the last page.
    pub next_cursor: Option<String>,
}

/// A position in a list: the time of an item and its id, which breaks ties.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Position {
    pub(crate) at: i64,
    pub(crate) id: String,
}

impl ListPage {
    /// The first `limit` items.
    pub fn first(limit: usize) -> ListPage {
        ListPage {
            after: None,
            limit: Some(limit),
        }
    }

    /// The page's size, checked.
    pub(crate) fn size(&self) -> Result<usize, CoreError> {
        match self.limit {
            None => Ok(DEFAULT_PAGE),
            Some(limit) if (1..=MAX_PAGE).contains(&limit) => Ok(limit),
            Some(limit) => Err(CoreError::Invalid(format!(
                "limit must be between 1 and {MAX_PAGE}, not {limit}"
            ))),
        }
    }

    /// Where the page starts, from its cursor.
    pub(crate) fn start(&self) -> Result<Option<Position>, CoreError> {
        let Some(cursor) = &self.after else {
            return Ok(None);
        };
        let refused = || {
            CoreError::Invalid(format!(
                "after {cursor:?} is not a cursor this server gave: pass a page's nextCursor as it is"
            ))
        };
        let (at, id) = cursor.split_once('~').ok_or_else(refused)?;
        let at = at.parse::<i64>().map_err(|_| refused())?;
        if id.is_empty() {
            return Err(refused());
        }
        Ok(Some(Position {
            at,
            id: id.to_owned(),
        }))
    }
}

impl<T> Listed<T> {
    /// The page made of `rows`, read with one more than `size` to learn whether a next page
    /// exists; `position` says where an item sits.
    pub(crate) fn from_rows(
        mut rows: Vec<T>,
        size: usize,
        position: impl Fn(&T) -> Position,
    ) -> Listed<T> {
        let next_cursor = if rows.len() > size {
            rows.truncate(size);
            rows.last().map(|last| {
                let Position { at, id } = position(last);
                format!("{at}~{id}")
            })
        } else {
            None
        };
        Listed {
            items: rows,
            next_cursor,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_round_trips_and_a_made_up_one_is_refused() {
        let listed = Listed::from_rows(vec![(5, "b"), (4, "a"), (3, "z")], 2, |&(at, id)| {
            Position {
                at,
                id: id.to_owned(),
            }
        });
        assert_eq!(listed.items.len(), 2);
        let next = ListPage {
            after: listed.next_cursor,
            limit: None,
        };
        assert_eq!(
            next.start().expect("cursor"),
            Some(Position {
                at: 4,
                id: "a".into()
            })
        );
        for bad in ["", "4", "x~a", "4~"] {
            let page = ListPage {
                after: Some(bad.into()),
                limit: None,
            };
            assert!(
                matches!(page.start(), Err(CoreError::Invalid(_))),
                "{bad:?}"
            );
        }
        for limit in [0, MAX_PAGE + 1] {
            assert!(ListPage::first(limit).size().is_err(), "{limit}");
        }
    }

    #[test]
    fn the_last_page_has_no_cursor() {
        let listed = Listed::from_rows(vec![1, 2], 2, |&n| Position {
            at: n,
            id: n.to_string(),
        });
        assert_eq!(listed.next_cursor, None);
    }
}
