#!/usr/bin/env bash
# Renders a run's report.html in headless Chromium (installed when missing) with the network
# switched off, and writes a full-page screenshot next to it: RUN/report.png. Fails when the page
# does not render or when Chromium reports a failed resource load.
set -euo pipefail
run=${1:?usage: scripts/check_report.sh RUN_DIR}
page="$(cd "$run" && pwd)/report.html"
[[ -f "$page" ]] || { echo "check_report: no $page (run: halo-clip report --run $run)" >&2; exit 1; }
if ! command -v chromium > /dev/null; then
  SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO=sudo
  $SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends chromium
fi
flags=(--headless --no-sandbox --disable-gpu --hide-scrollbars --proxy-server=127.0.0.1:9
       --proxy-bypass-list='<-loopback>' --window-size=1100,${HEIGHT:-4000})
log=$(mktemp)
chromium "${flags[@]}" --screenshot="$run/report.png" "file://$page" > "$log" 2>&1 || { cat "$log"; exit 1; }
chromium "${flags[@]}" --dump-dom "file://$page" 2> /dev/null | grep -o "<svg" | wc -l | sed 's/^/svg charts rendered: /'
if grep -qiE "ERR_|failed to load" "$log"; then cat "$log"; echo "check_report: a resource failed to load" >&2; exit 1; fi
rm -f "$log"
echo "screenshot: $run/report.png"
