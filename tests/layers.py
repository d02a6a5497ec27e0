#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# The runtime's layers, checked from the source: every #include "..." in
# runtime/<layer>/ names a header of its own layer or of a layer below it (the
# build fails on an upward include too, since each layer's library sees only the
# folders below; this check says which include and why), no module (a .c/.h pair)
# is part of an include cycle, the layers below gpu/ include no Vulkan, the public
# header runtime/vkphi.h brings in no internal header, and tools/ and bench/ reach
# the runtime only through it (or core/ headers, or a listed exception).
import os
import re
import sys

ROOT = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), ".."))
LAYERS = ["core", "gpu", "kernels", "model", "convert"]  # bottom first
# Headers generated or shared with the shaders, and the lowest layer that may include each.
EXTERNAL = {"iq4_values.h": "core", "shaders.h": "gpu", "push_constants.h": "gpu"}
VULKAN = re.compile(r'#\s*include\s*[<"](volk\.h|vulkan/[^>"]+)[>"]')
INCLUDE = re.compile(r'^\s*#\s*include\s*"([^"]+)"', re.M)

# A module is a .c/.h pair by stem; x_internal.h, the part of x.h that only x's own
# files share, belongs to module x.
def module_of(stem):
    return stem[: -len("_internal")] if stem.endswith("_internal") else stem


errors = []
where = {}  # header name -> layer
files = {}  # path -> layer
for layer in LAYERS:
    d = os.path.join(ROOT, "runtime", layer)
    if not os.path.isdir(d):
        errors.append("runtime/%s/ is missing" % layer)
        continue
    for name in sorted(os.listdir(d)):
        if name.endswith((".c", ".h", ".S")):
            files[os.path.join(d, name)] = layer
            if name.endswith(".h"):
                if name in where:
                    errors.append("%s is in runtime/%s/ and runtime/%s/: one home for each header" % (name, where[name], layer))
                where[name] = layer

edges = {}  # module -> set of modules
for path, layer in files.items():
    rel = os.path.relpath(path, ROOT)
    text = open(path, encoding="utf-8").read()
    mod = module_of(os.path.splitext(rel)[0])
    edges.setdefault(mod, set())
    if LAYERS.index(layer) < LAYERS.index("gpu") and VULKAN.search(text):
        errors.append("%s includes Vulkan, which the %s layer must not know" % (rel, layer))
    for inc in INCLUDE.findall(text):
        base = os.path.basename(inc)
        if inc != base:
            errors.append("%s: #include \"%s\" reaches into a folder: name the header, the build finds it" % (rel, inc))
        if base in EXTERNAL:
            if LAYERS.index(layer) < LAYERS.index(EXTERNAL[base]):
                errors.append("%s includes %s, which the %s layer may not use" % (rel, base, layer))
            continue
        if base not in where:
            errors.append("%s includes %s, which no runtime layer has" % (rel, base))
            continue
        if LAYERS.index(where[base]) > LAYERS.index(layer):
            errors.append("%s (layer %s) includes %s of the %s layer above it" % (rel, layer, base, where[base]))
        target = module_of(os.path.join("runtime", where[base], os.path.splitext(base)[0]))
        if target != mod:
            edges[mod].add(target)

# Include cycles between modules (Tarjan's strongly connected components).
index, low, stack, on, sccs, counter = {}, {}, [], set(), [], [0]
def visit(v):
    index[v] = low[v] = counter[0]
    counter[0] += 1
    stack.append(v)
    on.add(v)
    for w in sorted(edges.get(v, ())):
        if w not in index:
            visit(w)
            low[v] = min(low[v], low[w])
        elif w in on:
            low[v] = min(low[v], index[w])
    if low[v] == index[v]:
        comp = []
        while True:
            w = stack.pop()
            on.discard(w)
            comp.append(w)
            if w == v:
                break
        if len(comp) > 1:
            sccs.append(sorted(comp))
sys.setrecursionlimit(10000)
for v in sorted(edges):
    if v not in index:
        visit(v)
for comp in sccs:
    errors.append("include cycle among %s" % ", ".join(comp))

# The program and the benchmark use the runtime through its public header,
# runtime/vkphi.h; a command that needs no GPU may include a core/ header instead.
# Every other runtime header they include is an exception named here with its reason,
# so that a new one fails until it is argued for.
PUBLIC = "vkphi.h"
TOOL_EXCEPTIONS = {}
# Internal headers that vkphi.h must not bring in, directly or through the headers it
# includes (memory_plan.h brings gpu/memory.h and gpu/arena.h, and with them
# buffer.h: a plan is written in their terms).
INTERNAL = {"kernels.h", "ops.h", "pipeline.h", "commands.h", "shaders.h", "quant.h", "quant_iq.h",
            "quant_iq_tables.h", "repack.h", "ref.h", "ref_model.h", "env.h"}
header_paths = {name: os.path.join(ROOT, "runtime", layer, name) for name, layer in where.items()}
public_path = os.path.join(ROOT, "runtime", PUBLIC)
if not os.path.isfile(public_path):
    errors.append("runtime/%s, the public header, is missing" % PUBLIC)
else:
    seen, todo = {}, [(PUBLIC, public_path, PUBLIC)]  # header -> the header that first included it
    while todo:
        name, path, by = todo.pop()
        for inc in INCLUDE.findall(open(path, encoding="utf-8").read()):
            base = os.path.basename(inc)
            if base in seen or base not in header_paths:
                continue
            seen[base] = name
            todo.append((base, header_paths[base], name))
    for base in sorted(seen):
        if base in INTERNAL:
            errors.append("runtime/%s brings in %s (through %s), which is internal to the runtime" % (PUBLIC, base, seen[base]))
used = set()
for top in ("tools", "bench"):
    for dirpath, _, names in os.walk(os.path.join(ROOT, top)):
        for name in sorted(names):
            if not name.endswith((".c", ".h")):
                continue
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, ROOT)
            for inc in INCLUDE.findall(open(path, encoding="utf-8").read()):
                base = os.path.basename(inc)
                if "runtime/" in inc:
                    errors.append("%s: #include \"%s\" reaches into runtime/ by path" % (rel, inc))
                elif base == PUBLIC or base not in where:
                    continue  # the public header, or one of tools/ itself
                elif (rel, base) in TOOL_EXCEPTIONS:
                    used.add((rel, base))
                elif where[base] != "core":
                    errors.append("%s includes %s of the runtime's %s layer: tools/ and bench/ use %s (or, without a "
                                  "GPU, core/ headers)" % (rel, base, where[base], PUBLIC))
for rel, base in sorted(set(TOOL_EXCEPTIONS) - used):
    errors.append("%s no longer includes %s: remove its exception from tests/layers.py" % (rel, base))

for e in errors:
    print("FAIL " + e)
print("%d modules in %d layers, %d includes between modules" % (len(edges), len(LAYERS), sum(len(s) for s in edges.values())))
print("%d passed, %d failed" % (1 if not errors else 0, len(errors)))
sys.exit(1 if errors else 0)
