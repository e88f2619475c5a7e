"""What `fleetpipe dev` prints once the stack is up: where to look and how to drive a demo run."""

from __future__ import annotations

from pathlib import Path

from cli.dev_stack import CODEC_KEYS_FILE
from cli.seed import DEMO_ENTERPRISE, DEMO_PIPELINE, DemoSeed
from settings import Settings

# Pull a field out of the API's envelope ({"code", "message", "content"}) with the python3 every
# machine has, so the commands need no jq.
_RUN_ID = 'python3 -c \'import json,sys; print(json.load(sys.stdin)["content"]["id"])\''
_MANUAL_STAGE_ID = (
    'python3 -c \'import json,sys; print([s["id"] for s in '
    'json.load(sys.stdin)["content"]["results"] if s["order"] == 2][0])\''
)


def banner(settings: Settings, ui_url: str, seed: DemoSeed, token_file: Path) -> str:
    base = f"http://{settings.api_host}:{settings.api_port}"
    api = f"{base}/api/pipelines/v0"
    auth = '-H "Authorization: Token $FLEETPIPE_TOKEN"'
    keys = ("from FLEETPIPE_CODEC_KEYS" if settings.codec_keys
            else f"kept in {settings.data_dir.resolve() / CODEC_KEYS_FILE}")
    return f"""
fleetpipe dev stack is up.

  API docs    {base}/docs
  Run page    {base}/ui/   (log in with the API token below)
  Web UI      {ui_url}   (Temporal: every run is a workflow there)
  API token   {seed.token}
              (enterprise "{DEMO_ENTERPRISE}"; kept in {token_file})
  Data        {settings.data_dir.resolve()}
  Codec key   {keys}
              (sensitive run inputs travel encrypted with it; to read them in a history:
              temporal workflow show -w <id> --codec-endpoint {base}/codec \\
                --codec-auth "Token $FLEETPIPE_TOKEN")

Drive the demo pipeline from another shell (copy-paste):

  export FLEETPIPE_TOKEN={seed.token}
  export FLEETPIPE_API_URL={base}

  # with the CLI: start a run, pass the gate of stage 2 once the run reaches it, and
  # watch it to the end (exit 0 on success). Pasted at once, they run one after the other.
  uv run fleetpipe runs start {DEMO_PIPELINE}
  uv run fleetpipe runs promote {DEMO_PIPELINE} --wait
  uv run fleetpipe runs watch {DEMO_PIPELINE}
  # (or `runs start {DEMO_PIPELINE} --watch`: live, it stops at the gate naming the promote
  #  command to run in another shell)

  # or with curl:
  export API={api}

  # 1. start a run: stage 1 (canary) runs at once, then the run waits at the manual stage 2
  RUN_ID=$(curl -s -X POST {auth} -H 'Content-Type: application/json' -d '{{}}' \\
    $API/pipelines/{seed.pipeline_id}/runs | {_RUN_ID}); echo $RUN_ID

  # 2. list its stage runs
  curl -s {auth} $API/runs/$RUN_ID/stageruns

  # 3. promote stage 2 (pass the manual gate)
  STAGE_ID=$(curl -s {auth} $API/runs/$RUN_ID/stageruns | {_MANUAL_STAGE_ID})
  curl -s -X PUT {auth} -H 'Content-Type: application/json' -d '{{"status":"queued"}}' \\
    $API/runs/$RUN_ID/stageruns/$STAGE_ID

  # 4. follow the run until it says success
  curl -s {auth} $API/pipelines/{seed.pipeline_id}/runs/$RUN_ID

Press Ctrl-C to stop everything.
"""
