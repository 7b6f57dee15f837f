# Puts the repository's virtual environment on PATH, creating it (`make env`) if it is missing.
_repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
if [ ! -f "$_repo_root/.venv/.installed" ]; then
  echo "No ready .venv in $_repo_root: creating it with 'make env' (a few minutes, ~7 GB)." >&2
  make -C "$_repo_root" env
fi
export PATH="$_repo_root/.venv/bin:$PATH"
export PYTHONUNBUFFERED=1
# The bookkeeping commands (config, explock, corpus builds) then start without importing torch and
# asteroid; the training and evaluation modules import the models they use (twostep_asteroid/__init__.py).
export TWOSTEP_ASTEROID_LIGHT_IMPORT=1
