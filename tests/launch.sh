#!/bin/sh
# SPDX-License-Identifier: MIT
# Starts a test program: directly, or through $VKPHI_LAUNCHER when it is set
# (tools/mesa.sh sets it to run the suite on a second Vulkan driver).
exec ${VKPHI_LAUNCHER:+"$VKPHI_LAUNCHER"} "$@"
