# SPDX-License-Identifier: MIT
# Writes the vocabulary of ../shared/reference/tiny-phi4-*.gguf from Phi-4's own
# (runtime/convert/phi4-tokenizer.gguf), so that tests can make a model of the reference
# files' shape without ../shared: `vkphi mkmodel --preset tiny --tokenizer OUT`.
#
#   python3 tiny_vocab.py IN.gguf OUT.gguf [N]
#
# The reference files keep Phi-4's first N = 4096 ordinary tokens, all 96 of its
# special (control) tokens after them, and the merges whose two pieces and result
# are kept tokens (the first 3840: merge i makes token 256 + i); the token ids in
# tokenizer.ggml.*_token_id move with their tokens. Every other key is copied.
import struct
import sys

NORMAL, CONTROL = 1, 3
SCALAR = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
STRING, ARRAY = 8, 9


def read(path):
    """(version, [(key, type, value)]) of a GGUF file without tensors; an array's value
    is (element type, list)."""
    f = open(path, "rb")

    def rd(fmt):
        return struct.unpack("<" + fmt, f.read(struct.calcsize("<" + fmt)))

    def val(t):
        if t == STRING:
            return f.read(rd("Q")[0])
        if t == ARRAY:
            et, n = rd("IQ")
            return (et, [val(et) for _ in range(n)])
        return rd(SCALAR[t])[0]

    magic, version, n_tensors, n_kv = rd("4sIQQ")
    if magic != b"GGUF" or n_tensors:
        sys.exit("%s: not a tokenizer-only GGUF file" % path)
    kvs = []
    for _ in range(n_kv):
        key = f.read(rd("Q")[0]).decode()
        t = rd("I")[0]
        kvs.append((key, t, val(t)))
    return version, kvs


def write(path, version, kvs):
    out = [struct.pack("<4sIQQ", b"GGUF", version, 0, len(kvs))]

    def val(t, v):
        if t == STRING:
            out.append(struct.pack("<Q", len(v)) + v)
        elif t == ARRAY:
            et, items = v
            out.append(struct.pack("<IQ", et, len(items)))
            for x in items:
                val(et, x)
        else:
            out.append(struct.pack("<" + SCALAR[t], v))

    for key, t, v in kvs:
        out.append(struct.pack("<Q", len(key)) + key.encode() + struct.pack("<I", t))
        val(t, v)
    with open(path, "wb") as f:
        f.write(b"".join(out))


def main():
    src, dst = sys.argv[1], sys.argv[2]
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 4096
    version, kvs = read(src)
    kv = {k: v for k, _, v in kvs}
    tokens = kv["tokenizer.ggml.tokens"][1]
    types = kv["tokenizer.ggml.token_type"][1]
    if types[:n].count(NORMAL) != n:
        sys.exit("%s: the first %d tokens are not all ordinary ones" % (src, n))
    keep = list(range(n)) + [i for i in range(n, len(tokens)) if types[i] == CONTROL]
    new_id = {old: new for new, old in enumerate(keep)}
    kept = set(tokens[i] for i in keep)
    merges = []
    for m in kv["tokenizer.ggml.merges"][1]:
        a, b = m.split(b" ", 1)
        if a in kept and b in kept and a + b in kept:
            merges.append(m)
    if len(merges) != n - 256:
        sys.exit("%d merges make the first %d tokens, want %d" % (len(merges), n, n - 256))
    out = []
    for key, t, v in kvs:
        if key in ("tokenizer.ggml.tokens", "tokenizer.ggml.token_type"):
            v = (v[0], [v[1][i] for i in keep])
        elif key == "tokenizer.ggml.merges":
            v = (v[0], merges)
        elif key.startswith("tokenizer.ggml.") and key.endswith("_token_id"):
            if v not in new_id:
                sys.exit("%s = %d: that token is not kept" % (key, v))
            v = new_id[v]
        out.append((key, t, v))
    write(dst, version, out)


main()
