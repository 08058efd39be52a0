#!/usr/bin/env bash
# Installs the Debian 12 packages synod needs to build, test and run.
#   deploy/install-deps.sh           build + run dependencies
#   deploy/install-deps.sh --test    also the test-only ones
# Runs apt-get as root, or through sudo; does nothing when all are present.
set -euo pipefail

pkgs=(build-essential cmake pkg-config libssl-dev libuv1-dev libprotobuf-c-dev
      protobuf-c-compiler libpq-dev libinih-dev postgresql-15 postgresql-client-15)
if [[ "${1:-}" == "--test" ]]; then
  # CUnit and json-c for the suites, tmux to drive `synod chat`, clang and
  # its runtime for the libFuzzer targets, testssl.sh and jq (to read its
  # findings) for the TLS audit, clang-tidy, cppcheck and clang-format for
  # the static checks, valgrind for the leak check of the unit suites.
  pkgs+=(libcunit1-dev libjson-c-dev tmux clang libclang-rt-14-dev testssl.sh
         jq clang-tidy cppcheck clang-format valgrind)
fi

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
    missing+=("$p")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

echo "install-deps: installing ${missing[*]}" >&2
if [[ $(id -u) -eq 0 ]]; then
  sudo=()
elif command -v sudo >/dev/null; then
  sudo=(sudo)
else
  echo "install-deps: need root or sudo to install: ${missing[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
