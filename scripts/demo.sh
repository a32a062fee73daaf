#!/usr/bin/env bash
# The one-command local demo (README's main job): starts the test kit's regtest chain and a
# real ElectrumX on 127.0.0.1, then runs a verified wallet sync with the `electrum-spv` CLI:
# headers verified from genesis, every address's status recomputed and every confirmed
# transaction proven by its merkle branch into a verified header, over TLS pinned to the
# server's certificate. Stops everything it started.
#   scripts/demo.sh            (first run installs ElectrumX into target/testkit-venv)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -q --locked -p electrum-spv -p electrum-spv-testkit --bins
bin=${CARGO_TARGET_DIR:-target}/debug

coproc SERVE { exec "$bin/testkit-serve"; }
serve_pid=$SERVE_PID
# Closing its standard input makes testkit-serve stop ElectrumX and the stand-in and exit (a
# signal would leave ElectrumX, in its own process group, running).
stop_serve() {
  exec {SERVE[1]}>&- 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$serve_pid" 2>/dev/null || return 0; sleep 0.2; done
  kill "$serve_pid" 2>/dev/null || true
}
trap stop_serve EXIT
IFS= read -r hello <&"${SERVE[0]}" || { echo "demo: the test kit did not start" >&2; exit 1; }
field() { python3 -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$hello" "$1"; }
ssl=$(field ssl)
pin=$(field tls_pin)
echo "demo: regtest chain at height $(field height), ElectrumX on $(field server) and $ssl" >&2

cli=("$bin/electrum-spv" --network regtest --server "$ssl" --tls-pin "$pin")
"${cli[@]}" headers
total=0
for name in alice bob; do
  for kind in p2pkh p2wpkh p2sh-p2wpkh p2tr; do
    address=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["addresses"][sys.argv[2]])' "$hello" "$name-$kind")
    line=$("${cli[@]}" --json history "$address")
    echo "$line"
    n=$(python3 -c 'import json,sys; print(len(json.loads(sys.argv[1])["history"]))' "$line")
    total=$((total + n))
  done
done
"${cli[@]}" balance "$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["addresses"]["alice-p2wpkh"])' "$hello")"
echo "ok demo: 8 addresses, $total verified history entries"
