#!/usr/bin/env bash
# The system packages the tests need, from Debian: installs the missing ones when it can (root,
# apt-get), otherwise prints the one command that does and fails. `npm test` runs it first.
#   chromium            the browser of the Chromium e2e project (Playwright downloads none here)
#   firefox-esr         Firefox (Gecko), driven over WebDriver BiDi
#   webkit2gtk-driver   WebKitWebDriver and WebKitGTK's MiniBrowser
#   xvfb                the virtual display MiniBrowser runs on
#   redis-server        the Redis store and cluster tests
#   nginx               the reverse-proxy tests
set -euo pipefail

# package name, then the file it must provide
wanted=(
  chromium /usr/bin/chromium
  firefox-esr /usr/bin/firefox-esr
  webkit2gtk-driver /usr/bin/WebKitWebDriver
  webkit2gtk-driver /usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/MiniBrowser
  xvfb /usr/bin/Xvfb
  redis-server /usr/bin/redis-server
  nginx /usr/sbin/nginx
)

missing=()
for ((i = 0; i < ${#wanted[@]}; i += 2)); do
  package=${wanted[i]}
  file=${wanted[i + 1]}
  if [ ! -x "$file" ] && [[ " ${missing[*]} " != *" $package "* ]]; then missing+=("$package"); fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

command="apt-get update && apt-get install -y ${missing[*]}"
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "ensure-system: missing system packages: ${missing[*]}" >&2
  echo "ensure-system: install them (Debian) with:  sudo sh -c '$command'" >&2
  exit 1
fi

echo "ensure-system: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq "${missing[@]}" >/dev/null
