// SPDX-License-Identifier: MIT
// The public header: everything tools/ and bench/ may use.
#pragma once
#include "common.h"
#include "device.h"
