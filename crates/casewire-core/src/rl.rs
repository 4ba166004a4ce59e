//! The fraud-response policy of the guide's RL routes: a small value table learnt from the
//! feedback of analysts, kept in the local database so it works offline.
//!
//! - A wallet's **state** comes from what this laptop knows of it: `known_fraudster` (evidence
//!   in a case that was escalated, even if closed since), `high_risk` (evidence rated high or critical), `reported` (any live
//!   evidence) or `unknown`.
//! - The **action** is the one with the highest value in that state, among `freeze`,
//!   `investigate`, `monitor` and `dismiss`; its value (0 to 1) is the prediction's score.
//!   Values start from the priors below and each feedback moves them: the predicted action
//!   toward 1 when it was right and toward 0 when not, the action that should have been taken
//!   toward 1 (`value += 0.2 × (target − value)`).
//! - `rl.prediction.made` is high priority for `freeze`, medium otherwise (the guide's
//!   "medium-high"). Feedback emits `rl.feedback.received` (high) and `rl.model.updated`
//!   with the new model version, in the same transaction as the values it changed.

use std::sync::Arc;

use casewire_events::{EventType, Priority, Wallet, parse_wallet};
use casewire_outbox::{Clock, Outbox};
use rand::RngCore;
use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use crate::{CoreError, RequestInfo, User};

/// The actions the policy chooses among, in tie-break order.
pub const ACTIONS: [&str; 4] = ["freeze", "investigate", "monitor", "dismiss"];

/// How far one feedback moves a value toward its target.
const LEARNING_RATE: f64 = 0.2;

/// The starting value of each action, per state.
fn prior(state: &str, action: &str) -> f64 {
    let row: [f64; 4] = match state {
        "known_fraudster" => [0.95, 0.6, 0.2, 0.0],
        "high_risk" => [0.6, 0.8, 0.4, 0.05],
        "reported" => [0.2, 0.7, 0.5, 0.1],
        _ => [0.05, 0.3, 0.6, 0.4],
    };
    ACTIONS
        .iter()
        .position(|a| *a == action)
        .map_or(0.0, |i| row[i])
}

/// What a prediction is asked about.
#[derive(Debug, Clone, Default)]
pub struct PredictionRequest {
    /// The wallet to act on.
    pub wallet: String,
    /// The evidence that prompted the question, if any.
    pub evidence_id: Option<String>,
    /// The case it belongs to, if any.
    pub case_id: Option<String>,
}

/// A prediction made.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Prediction {
    /// 24 hex digits.
    pub prediction_id: String,
    /// The wallet.
    pub wallet: String,
    /// What the policy recommends.
    pub action: String,
    /// The action's value, 0 to 1.
    pub score: f64,
    /// The wallet's state.
    pub state: String,
    /// The prompting evidence, if any.
    pub evidence_id: Option<String>,
    /// The case, if any.
    pub case_id: Option<String>,
    /// The model version that made it.
    pub model_version: i64,
}

/// Feedback recorded on a prediction.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Feedback {
    /// 24 hex digits.
    pub feedback_id: String,
    /// The prediction it judges.
    pub prediction_id: String,
    /// The wallet.
    pub wallet: String,
    /// What the policy recommended.
    pub predicted_action: String,
    /// What should have been done.
    pub actual_action: String,
    /// `correct` or `incorrect`.
    pub outcome: String,
    /// 1 when correct, −1 when not.
    pub reward: f64,
    /// The model version after learning from it.
    pub model_version: i64,
}

/// The policy, its predictions and their feedback.
pub struct Policy {
    outbox: Arc<Outbox>,
    clock: Arc<dyn Clock>,
}

fn new_id() -> String {
    let mut id = [0u8; 12];
    rand::rng().fill_bytes(&mut id);
    hex::encode(id)
}

fn check_action(action: &str) -> Result<(), CoreError> {
    if ACTIONS.contains(&action) {
        Ok(())
    } else {
        Err(CoreError::Invalid(format!(
            "actualAction {action:?} must be one of {}",
            ACTIONS.join(", ")
        )))
    }
}

/// The value of `action` in `state`: learnt, or its prior.
fn value(tx: &rusqlite::Connection, state: &str, action: &str) -> rusqlite::Result<f64> {
    Ok(tx
        .prepare_cached("SELECT value FROM rl_values WHERE state = ?1 AND action = ?2")?
        .query_row([state, action], |r| r.get(0))
        .optional()?
        .unwrap_or_else(|| prior(state, action)))
}

/// Moves the value of `action` in `state` toward `target`.
fn learn(
    tx: &rusqlite::Connection,
    state: &str,
    action: &str,
    target: f64,
) -> rusqlite::Result<()> {
    let old = value(tx, state, action)?;
    let new = old + LEARNING_RATE * (target - old);
    tx.prepare_cached(
        "INSERT INTO rl_values (state, action, value, updates) VALUES (?1, ?2, ?3, 1)
         ON CONFLICT (state, action) DO UPDATE SET value = ?3, updates = updates + 1",
    )?
    .execute(params![state, action, new])?;
    Ok(())
}

/// The chain of a wallet on record, for its events (`None` for one that no longer parses).
fn chain_of(wallet: &str) -> Option<&'static str> {
    parse_wallet(wallet).ok().map(|w| w.chain().as_str())
}

fn model_version(tx: &rusqlite::Connection) -> rusqlite::Result<i64> {
    tx.query_row("SELECT version FROM rl_model WHERE id = 1", [], |r| {
        r.get(0)
    })
}

/// The wallet's state from the evidence and cases on record about any spelling of it.
fn state_of(tx: &rusqlite::Connection, wallet: &Wallet) -> rusqlite::Result<&'static str> {
    let (escalated, risky, reported): (bool, bool, bool) = tx.query_row(
        "SELECT COALESCE(MAX(EXISTS (SELECT 1 FROM case_events ce
                                        WHERE ce.case_id = e.case_id
                                          AND ce.event_type = 'case.escalated')), 0),
                COALESCE(MAX(e.risk_level IN ('high', 'critical')), 0),
                COUNT(e.evidence_id) > 0
           FROM evidence e
          WHERE e.wallet_key = ?1 AND e.deleted_at IS NULL",
        [wallet.key()],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    Ok(if escalated {
        "known_fraudster"
    } else if risky {
        "high_risk"
    } else if reported {
        "reported"
    } else {
        "unknown"
    })
}

impl Policy {
    /// The policy in the outbox's database (the domain's migrations must have run).
    pub fn new(outbox: Arc<Outbox>, clock: Arc<dyn Clock>) -> Policy {
        Policy { outbox, clock }
    }

    /// Recommends an action for a wallet and records the prediction with its
    /// `rl.prediction.made` event.
    pub fn predict(
        &self,
        request: PredictionRequest,
        user: &User,
        from: &RequestInfo,
    ) -> Result<Prediction, CoreError> {
        let wallet = parse_wallet(&request.wallet)
            .map_err(|e| CoreError::Invalid(format!("wallet: {e}")))?;
        let (clock, user, from) = (self.clock.clone(), user.clone(), from.clone());
        let prediction = self
            .outbox
            .write(move |tx| {
                let state = state_of(tx, &wallet)?;
                let mut best = (ACTIONS[0], f64::MIN);
                for action in ACTIONS {
                    let v = value(tx, state, action)?;
                    if v > best.1 {
                        best = (action, v);
                    }
                }
                let prediction = Prediction {
                    prediction_id: new_id(),
                    wallet: request.wallet,
                    action: best.0.to_owned(),
                    score: best.1.clamp(0.0, 1.0),
                    state: state.to_owned(),
                    evidence_id: request.evidence_id,
                    case_id: request.case_id,
                    model_version: model_version(tx)?,
                };
                tx.execute(
                    "INSERT INTO rl_predictions (prediction_id, wallet, state, action, score,
                         evidence_id, case_id, made_by, made_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                    params![
                        prediction.prediction_id,
                        prediction.wallet,
                        prediction.state,
                        prediction.action,
                        prediction.score,
                        prediction.evidence_id,
                        prediction.case_id,
                        user.username,
                        clock.now_ms()
                    ],
                )?;
                let mut data = serde_json::json!({
                    "predictionId": prediction.prediction_id,
                    "wallet": prediction.wallet,
                    "walletChain": wallet.chain().as_str(),
                    "action": prediction.action,
                    "score": prediction.score,
                    "state": prediction.state,
                    "modelVersion": prediction.model_version.to_string(),
                });
                if let Some(id) = &prediction.evidence_id {
                    data["evidenceId"] = id.clone().into();
                }
                if let Some(id) = &prediction.case_id {
                    data["caseId"] = id.clone().into();
                }
                let priority = if prediction.action == "freeze" {
                    Priority::High
                } else {
                    Priority::Medium
                };
                let event =
                    crate::action_event(&*clock, EventType::RlPredictionMade, data, &user, &from)
                        .with_priority(priority);
                tx.enqueue(&event)?;
                Ok::<_, CoreError>(prediction)
            })
            .wait()?;
        tracing::info!(prediction = %prediction.prediction_id, action = %prediction.action, "prediction made");
        Ok(prediction)
    }

    /// Records an analyst's judgement of a prediction and learns from it: one feedback per
    /// prediction, with `rl.feedback.received` and `rl.model.updated`.
    pub fn feedback(
        &self,
        prediction_id: &str,
        actual_action: &str,
        user: &User,
        from: &RequestInfo,
    ) -> Result<Feedback, CoreError> {
        check_action(actual_action)?;
        let (clock, user, from) = (self.clock.clone(), user.clone(), from.clone());
        let (prediction_id, actual_action) = (prediction_id.to_owned(), actual_action.to_owned());
        let feedback = self
            .outbox
            .write(move |tx| {
                type Recorded = (String, String, String, Option<String>, Option<String>);
                let predicted: Option<Recorded> = tx
                    .query_row(
                        "SELECT wallet, state, action, evidence_id, case_id
                           FROM rl_predictions WHERE prediction_id = ?1",
                        [&prediction_id],
                        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
                    )
                    .optional()?;
                let Some((wallet, state, predicted_action, evidence_id, case_id)) = predicted
                else {
                    return Err(CoreError::NotFound(format!("prediction {prediction_id}")));
                };
                let correct = predicted_action == actual_action;
                learn(
                    tx,
                    &state,
                    &predicted_action,
                    if correct { 1.0 } else { 0.0 },
                )?;
                if !correct {
                    learn(tx, &state, &actual_action, 1.0)?;
                }
                tx.execute("UPDATE rl_model SET version = version + 1 WHERE id = 1", [])?;
                let feedback = Feedback {
                    feedback_id: new_id(),
                    prediction_id,
                    wallet,
                    predicted_action,
                    actual_action,
                    outcome: if correct { "correct" } else { "incorrect" }.to_owned(),
                    reward: if correct { 1.0 } else { -1.0 },
                    model_version: model_version(tx)?,
                };
                let inserted = tx.execute(
                    "INSERT INTO rl_feedback (feedback_id, prediction_id, actual_action, outcome,
                         reward, given_by, given_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (prediction_id) DO NOTHING",
                    params![
                        feedback.feedback_id,
                        feedback.prediction_id,
                        feedback.actual_action,
                        feedback.outcome,
                        feedback.reward,
                        user.username,
                        clock.now_ms()
                    ],
                )?;
                if inserted == 0 {
                    return Err(CoreError::Conflict(format!(
                        "prediction {} already has its feedback",
                        feedback.prediction_id
                    )));
                }
                let mut data = serde_json::json!({
                    "feedbackId": feedback.feedback_id,
                    "predictionId": feedback.prediction_id,
                    "wallet": feedback.wallet,
                    "walletChain": chain_of(&feedback.wallet),
                    "predictedAction": feedback.predicted_action,
                    "actualAction": feedback.actual_action,
                    "outcome": feedback.outcome,
                    "reward": feedback.reward,
                });
                if let Some(id) = evidence_id {
                    data["evidenceId"] = id.into();
                }
                if let Some(id) = case_id {
                    data["caseId"] = id.into();
                }
                let received =
                    crate::action_event(&*clock, EventType::RlFeedbackReceived, data, &user, &from);
                let updated = crate::action_event(
                    &*clock,
                    EventType::RlModelUpdated,
                    serde_json::json!({
                        "modelVersion": feedback.model_version.to_string(),
                        "state": state,
                        "trigger": feedback.feedback_id,
                    }),
                    &user,
                    &from,
                );
                tx.enqueue(&received)?;
                tx.enqueue(&updated)?;
                Ok::<_, CoreError>(feedback)
            })
            .wait()?;
        tracing::info!(feedback = %feedback.feedback_id, outcome = %feedback.outcome, "feedback received; model updated");
        Ok(feedback)
    }
}
