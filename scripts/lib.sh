# Sourced by scripts/dev, scripts/test and .ci/run: make sure uv is there and the locked
# environment is installed, on a machine that starts with nothing but python3 and pip.

# Sets UV to the command that runs uv: the one on PATH, or the pip-installed module.
ensure_uv() {
  if command -v uv >/dev/null 2>&1; then
    UV=(uv)
    return
  fi
  if ! python3 -m uv --version >/dev/null 2>&1; then
    echo "uv not found: installing it with pip" >&2
    # A Debian-managed python refuses plain installs (PEP 668): fall back to the user site.
    python3 -m pip install --quiet uv \
      || python3 -m pip install --quiet --user --break-system-packages uv
  fi
  UV=(python3 -m uv)
}

# Installs exactly what uv.lock says (the dev group too: pytest, ruff, the Temporal test server).
sync_env() {
  ensure_uv
  "${UV[@]}" sync --frozen
}
