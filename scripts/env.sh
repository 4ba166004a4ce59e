# Sourced by the scripts: one cargo target directory outside the checkout, shared by every
# build on this machine (developer and CI alike), so rebuilds reuse it.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/casewire/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
