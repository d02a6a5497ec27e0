#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Installs the Debian packages vkphi builds and tests with (only the missing ones).
set -euo pipefail
pkgs=(cmake make gcc pkg-config libvulkan-dev libvulkan-volk-dev glslang-tools libstb-dev
      mesa-vulkan-drivers vulkan-validationlayers libpcre2-dev libcjson-dev libmicrohttpd-dev
      curl clang libclang-rt-14-dev python3)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
fi
