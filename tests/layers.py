#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# The runtime's layers, checked from the source: every #include "..." in
# runtime/<layer>/ names a header of its own layer or of a layer below it (the
# build fails on an upward include too, since each layer's library sees only the
# folders below; this check says which include and why), no module (a .c/.h pair)
# is part of an include cycle, the layers below gpu/ include no Vulkan, and tools/
# and bench/ reach the runtime only through headers of its layers.
import os
import re
import sys

ROOT = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), ".."))
LAYERS = ["core", "gpu", "kernels", "model", "convert"]  # bottom first
# Headers generated or shared with the shaders, and the lowest layer that may include each.
EXTERNAL = {"iq4_values.h": "core", "shaders.h": "gpu"}
VULKAN = re.compile(r'#\s*include\s*[<"](volk\.h|vulkan/[^>"]+)[>"]')
INCLUDE = re.compile(r'^\s*#\s*include\s*"([^"]+)"', re.M)

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
    mod = os.path.splitext(rel)[0]
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
        target = os.path.join("runtime", where[base], os.path.splitext(base)[0])
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

# The program and the benchmark use the runtime's headers by name, never by a path into it.
for top in ("tools", "bench"):
    for dirpath, _, names in os.walk(os.path.join(ROOT, top)):
        for name in names:
            if not name.endswith((".c", ".h")):
                continue
            path = os.path.join(dirpath, name)
            for inc in INCLUDE.findall(open(path, encoding="utf-8").read()):
                if "runtime/" in inc:
                    errors.append("%s: #include \"%s\" reaches into runtime/ by path" % (os.path.relpath(path, ROOT), inc))

for e in errors:
    print("FAIL " + e)
print("%d modules in %d layers, %d includes between modules" % (len(edges), len(LAYERS), sum(len(s) for s in edges.values())))
print("%d passed, %d failed" % (1 if not errors else 0, len(errors)))
sys.exit(1 if errors else 0)
