// SPDX-License-Identifier: MIT
// The chat templates of the Phi-4 family, built as token ids piece by piece, and the
// splitter for the parts of an answer.
#include "chat.h"

#include "common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const roles[] = {"system", "user", "assistant", "tool"};

static int check_messages(const chat_message *m, size_t n, enum chat_template tmpl) {
    bool mini = tmpl == CHAT_TEMPLATE_PHI4_MINI;
    for (size_t i = 0; i < n; i++) {
        if (!m[i].role || !m[i].content)
            return vkphi_fail(VKPHI_ERR_ARG, "chat message %zu has no role or no content", i);
        bool known = false;
        for (size_t r = 0; r < (mini ? 4 : 3); r++)
            known |= !strcmp(m[i].role, roles[r]);
        if (!known)
            return vkphi_fail(VKPHI_ERR_ARG, "chat message %zu has role '%s'; the %s chat format knows system, user%s",
                              i, m[i].role, chat_template_name(tmpl), mini ? ", assistant and tool" : " and assistant");
        if (m[i].tool_calls && (!mini || strcmp(m[i].role, "assistant")))
            return vkphi_fail(VKPHI_ERR_ARG,
                              "chat message %zu has tool calls, which only an assistant message of "
                              "Phi-4-mini's format can carry",
                              i);
    }
    return VKPHI_OK;
}

// ---- which template ----

enum chat_template chat_template_detect(const char *jinja) {
    if (!jinja) return CHAT_TEMPLATE_NONE;
    // A newline written by the template (a literal one, or Jinja's "\n" escape) makes it
    // another format: ours have none between turns.
    bool newlines = strstr(jinja, "\\n") != NULL;
    for (const char *p = jinja; *p && !newlines; p++)
        newlines = *p == '\n';
    if (newlines) return CHAT_TEMPLATE_NONE;
    if (strstr(jinja, "<|im_start|>") && strstr(jinja, "<|im_sep|>") && strstr(jinja, "<|im_end|>"))
        return CHAT_TEMPLATE_PHI4;
    if (strstr(jinja, "<|end|>") && strstr(jinja, "<|assistant|>") && !strstr(jinja, "<|im_start|>"))
        return CHAT_TEMPLATE_PHI4_MINI;
    return CHAT_TEMPLATE_NONE;
}

enum chat_template chat_template_by_name(const char *name) {
    if (!name) return CHAT_TEMPLATE_NONE;
    if (!strcmp(name, "phi4") || !strcmp(name, "chatml")) return CHAT_TEMPLATE_PHI4;
    if (!strcmp(name, "phi4-mini")) return CHAT_TEMPLATE_PHI4_MINI;
    return CHAT_TEMPLATE_NONE;
}

const char *chat_template_name(enum chat_template tmpl) {
    return tmpl == CHAT_TEMPLATE_PHI4 ? "phi4" : tmpl == CHAT_TEMPLATE_PHI4_MINI ? "phi4-mini" : "none";
}

// The markers of each template: the turn openers by role (system, user, assistant),
// then what closes a turn, then (ChatML) what separates role and content.
typedef struct {
    int32_t open[4], end, sep;     // ids by role (system, user, assistant, tool); -1 where none
    int32_t tool_open, tool_close; // Phi-4-mini's <|tool|> <|/tool|>
    int32_t call_open, call_close; // Phi-4-mini's <|tool_call|> <|/tool_call|>
} markers;

static int find_marker(const tokenizer *t, enum chat_template tmpl, const char *name, int32_t *id) {
    *id = tokenizer_token_id(t, name);
    if (*id < 0 || !tokenizer_is_special(t, *id))
        return vkphi_fail(VKPHI_ERR_UNSUPPORTED,
                          "the vocabulary has no %s special token, so the %s chat format cannot be built", name,
                          chat_template_name(tmpl));
    return VKPHI_OK;
}

static int get_markers(const tokenizer *t, enum chat_template tmpl, markers *mk) {
    int err = VKPHI_OK;
    mk->sep = mk->tool_open = mk->tool_close = mk->call_open = mk->call_close = mk->open[3] = -1;
    if (tmpl == CHAT_TEMPLATE_PHI4) {
        int32_t start;
        if ((err = find_marker(t, tmpl, "<|im_start|>", &start)) ||
            (err = find_marker(t, tmpl, "<|im_sep|>", &mk->sep)) ||
            (err = find_marker(t, tmpl, "<|im_end|>", &mk->end)))
            return err;
        mk->open[0] = mk->open[1] = mk->open[2] = start;
        return VKPHI_OK;
    }
    if (tmpl != CHAT_TEMPLATE_PHI4_MINI) return vkphi_fail(VKPHI_ERR_ARG, "no chat template chosen");
    static const char *const open[3] = {"<|system|>", "<|user|>", "<|assistant|>"};
    for (int r = 0; r < 3 && !err; r++)
        err = find_marker(t, tmpl, open[r], &mk->open[r]);
    if (!err) err = find_marker(t, tmpl, "<|end|>", &mk->end);
    return err;
}

static enum chat_template template_of_vocab(const tokenizer *t) {
    if (tokenizer_token_id(t, "<|im_start|>") >= 0) return CHAT_TEMPLATE_PHI4;
    if (tokenizer_token_id(t, "<|end|>") >= 0 && tokenizer_token_id(t, "<|assistant|>") >= 0)
        return CHAT_TEMPLATE_PHI4_MINI;
    return CHAT_TEMPLATE_PHI4; // whose markers are then reported missing
}

int chat_template_choose(const gguf_file *f, const tokenizer *t, const char *fallback, enum chat_template *out) {
    const char *jinja = NULL;
    enum chat_template tmpl = CHAT_TEMPLATE_NONE;
    enum chat_template fb = chat_template_by_name(fallback);
    if (fallback && fb == CHAT_TEMPLATE_NONE)
        return vkphi_fail(VKPHI_ERR_UNSUPPORTED, "unknown chat template '%s' (known: " CHAT_TEMPLATE_NAMES ")",
                          fallback);
    if (!gguf_get_str(f, "tokenizer.chat_template", &jinja)) {
        tmpl = fb != CHAT_TEMPLATE_NONE ? fb : template_of_vocab(t);
    } else {
        tmpl = chat_template_detect(jinja);
        if (tmpl == CHAT_TEMPLATE_NONE) tmpl = fb;
        if (tmpl == CHAT_TEMPLATE_NONE)
            return vkphi_fail(VKPHI_ERR_UNSUPPORTED,
                              "%s: the model's chat template (tokenizer.chat_template) is neither Phi-4's nor "
                              "Phi-4-mini's, and vkphi does not run Jinja; name the format to use with --chat-template "
                              "(" CHAT_TEMPLATE_NAMES ")",
                              gguf_name(f));
    }
    markers mk;
    int err = get_markers(t, tmpl, &mk);
    if (err) return err;
    *out = tmpl;
    return VKPHI_OK;
}

// ---- rendering ----

// The caller's array may be exactly full, so it grows here one id at a time (a few
// markers a message; the contents grow it in bulk inside tokenizer_encode).
static int push(int32_t **ids, size_t *n, int32_t id) {
    int32_t *p = realloc(*ids, (*n + 1) * sizeof *p);
    if (!p) return vkphi_fail(VKPHI_ERR_NOMEM, "out of memory building the chat prompt");
    *ids = p;
    p[(*n)++] = id;
    return VKPHI_OK;
}

static int role_index(const char *role) {
    for (int r = 0; r < 4; r++)
        if (!strcmp(role, roles[r])) return r;
    return -1;
}

static int encode_text(const tokenizer *t, const char *s, int32_t **ids, size_t *n_ids) {
    return tokenizer_encode(t, s, strlen(s), false, ids, n_ids);
}

int chat_render(const tokenizer *t, enum chat_template tmpl, const chat_message *messages, size_t n_messages,
                const char *tools, bool add_generation_prompt, int32_t **ids, size_t *n_ids) {
    if (!t || !ids || !n_ids || (!messages && n_messages))
        return vkphi_fail(VKPHI_ERR_ARG, "chat_render got a NULL argument");
    if (!*ids) *n_ids = 0;
    markers mk;
    int err = get_markers(t, tmpl, &mk);
    if (!err) err = check_messages(messages, n_messages, tmpl);
    if (err) return err;
    if (tools && tmpl != CHAT_TEMPLATE_PHI4_MINI)
        return vkphi_fail(VKPHI_ERR_UNSUPPORTED, "the %s chat format has no place for tools (Phi-4-mini's has)",
                          chat_template_name(tmpl));
    bool tool_role = false, calls = false;
    for (size_t i = 0; i < n_messages; i++) {
        tool_role |= !strcmp(messages[i].role, "tool");
        calls |= messages[i].tool_calls != NULL;
    }
    if ((tools || tool_role) && (err = find_marker(t, tmpl, "<|tool|>", &mk.tool_open))) return err;
    mk.open[3] = mk.tool_open;
    if (calls && ((err = find_marker(t, tmpl, "<|tool_call|>", &mk.call_open)) ||
                  (err = find_marker(t, tmpl, "<|/tool_call|>", &mk.call_close))))
        return err;
    if (tools && (err = find_marker(t, tmpl, "<|/tool|>", &mk.tool_close))) return err;
    // Each piece of text is tokenized on its own and the ids joined. This is what
    // tokenizing the whole template with special parsing gives too, as long as the
    // contents hold no marker text: plain text between special tokens is split by
    // itself (tiktoken's rule, and ours), so no regex match ever spans a marker.
    size_t first_system = n_messages;
    for (size_t i = 0; i < n_messages && first_system == n_messages; i++)
        if (!strcmp(messages[i].role, "system")) first_system = i;
    // Tools and no system message: an empty system message carries them, first.
    if (tools && first_system == n_messages) {
        err = push(ids, n_ids, mk.open[0]);
        if (!err) err = push(ids, n_ids, mk.tool_open);
        if (!err) err = encode_text(t, tools, ids, n_ids);
        if (!err) err = push(ids, n_ids, mk.tool_close);
        if (!err) err = push(ids, n_ids, mk.end);
    }
    size_t n_turns = n_messages + (add_generation_prompt ? 1 : 0);
    for (size_t i = 0; i < n_turns && !err; i++) {
        bool prompt = i == n_messages;
        int r = prompt ? 2 : role_index(messages[i].role);
        err = push(ids, n_ids, mk.open[r]);
        if (!err && tmpl == CHAT_TEMPLATE_PHI4) {
            err = encode_text(t, roles[r], ids, n_ids);
            if (!err) err = push(ids, n_ids, mk.sep);
        }
        if (prompt || err) break;
        err = encode_text(t, messages[i].content, ids, n_ids);
        if (!err && messages[i].tool_calls) {
            err = push(ids, n_ids, mk.call_open);
            if (!err) err = encode_text(t, messages[i].tool_calls, ids, n_ids);
            if (!err) err = push(ids, n_ids, mk.call_close);
        }
        if (!err && tools && i == first_system) {
            err = push(ids, n_ids, mk.tool_open);
            if (!err) err = encode_text(t, tools, ids, n_ids);
            if (!err) err = push(ids, n_ids, mk.tool_close);
        }
        if (!err) err = push(ids, n_ids, mk.end);
    }
    return err;
}

int chat_build(const tokenizer *t, const chat_message *messages, size_t n_messages, bool add_generation_prompt,
               int32_t **ids, size_t *n_ids) {
    if (!t) return vkphi_fail(VKPHI_ERR_ARG, "chat_build got a NULL argument");
    return chat_render(t, template_of_vocab(t), messages, n_messages, NULL, add_generation_prompt, ids, n_ids);
}

typedef struct {
    char *p;
    size_t len, cap;
    bool oom;
} text_out;

static void put(text_out *o, const char *s) {
    size_t n = strlen(s);
    if (o->oom) return;
    if (o->len + n + 1 > o->cap) {
        size_t cap = o->cap ? o->cap : 256;
        while (cap < o->len + n + 1)
            cap *= 2;
        char *p = realloc(o->p, cap);
        if (!p) {
            o->oom = true;
            return;
        }
        o->p = p;
        o->cap = cap;
    }
    memcpy(o->p + o->len, s, n + 1);
    o->len += n;
}

int chat_format_template(enum chat_template tmpl, const chat_message *messages, size_t n_messages, const char *tools,
                         bool add_generation_prompt, char **out, size_t *out_len) {
    if (!out || (!messages && n_messages)) return vkphi_fail(VKPHI_ERR_ARG, "chat_format got a NULL argument");
    *out = NULL;
    int err = check_messages(messages, n_messages, tmpl);
    if (err) return err;
    if (tmpl != CHAT_TEMPLATE_PHI4 && tmpl != CHAT_TEMPLATE_PHI4_MINI)
        return vkphi_fail(VKPHI_ERR_ARG, "no chat template chosen");
    if (tools && tmpl != CHAT_TEMPLATE_PHI4_MINI)
        return vkphi_fail(VKPHI_ERR_UNSUPPORTED, "the %s chat format has no place for tools (Phi-4-mini's has)",
                          chat_template_name(tmpl));
    text_out o = {0};
    put(&o, "");
    size_t first_system = n_messages;
    for (size_t i = 0; i < n_messages && first_system == n_messages; i++)
        if (!strcmp(messages[i].role, "system")) first_system = i;
    if (tools && first_system == n_messages) {
        put(&o, "<|system|><|tool|>");
        put(&o, tools);
        put(&o, "<|/tool|><|end|>");
    }
    for (size_t i = 0; i <= n_messages; i++) {
        if (i == n_messages && !add_generation_prompt) break;
        const char *role = i == n_messages ? "assistant" : messages[i].role;
        if (tmpl == CHAT_TEMPLATE_PHI4) {
            put(&o, "<|im_start|>");
            put(&o, role);
            put(&o, "<|im_sep|>");
        } else {
            put(&o, "<|");
            put(&o, role);
            put(&o, "|>");
        }
        if (i == n_messages) break;
        put(&o, messages[i].content);
        if (messages[i].tool_calls) {
            put(&o, "<|tool_call|>");
            put(&o, messages[i].tool_calls);
            put(&o, "<|/tool_call|>");
        }
        if (tools && i == first_system) {
            put(&o, "<|tool|>");
            put(&o, tools);
            put(&o, "<|/tool|>");
        }
        put(&o, tmpl == CHAT_TEMPLATE_PHI4 ? "<|im_end|>" : "<|end|>");
    }
    if (o.oom) {
        free(o.p);
        return vkphi_fail(VKPHI_ERR_NOMEM, "out of memory formatting the chat prompt");
    }
    *out = o.p;
    if (out_len) *out_len = o.len;
    return VKPHI_OK;
}

int chat_format(const chat_message *messages, size_t n_messages, bool add_generation_prompt, char **out,
                size_t *out_len) {
    return chat_format_template(CHAT_TEMPLATE_PHI4, messages, n_messages, NULL, add_generation_prompt, out, out_len);
}

// ---- the splitter ----

struct chat_splitter {
    bool reasoning, tool_calls;
    enum chat_part state;
    size_t n_tool_calls;
    char held[32]; // a possible start of a tag (every tag is shorter)
    size_t n_held;
    // Whitespace around the reasoning is dropped, as the reference server trims it:
    // just after <think> and </think> (skip_ws), and just before </think> (the
    // reasoning's trailing whitespace is held in ws until more reasoning follows).
    bool skip_ws, oom;
    char *ws;
    size_t n_ws, cap_ws;
};

chat_splitter *chat_splitter_create(bool reasoning, bool tool_calls) {
    chat_splitter *s = calloc(1, sizeof *s);
    if (!s) {
        vkphi_fail(VKPHI_ERR_NOMEM, "out of memory creating the answer splitter");
        return NULL;
    }
    s->reasoning = reasoning;
    s->tool_calls = tool_calls;
    return s;
}

void chat_splitter_destroy(chat_splitter *s) {
    if (!s) return;
    free(s->ws);
    free(s);
}

enum chat_part chat_splitter_state(const chat_splitter *s) { return s->state; }
size_t chat_splitter_n_tool_calls(const chat_splitter *s) { return s->n_tool_calls; }

// The tags that can end the current part (or begin another): at most two.
static size_t tags_now(const chat_splitter *s, const char *tags[2], enum chat_part next[2]) {
    size_t n = 0;
    if (s->state == CHAT_PART_REASONING) {
        tags[n] = "</think>", next[n++] = CHAT_PART_CONTENT;
    } else if (s->state == CHAT_PART_TOOL_CALL) {
        tags[n] = "<|/tool_call|>", next[n++] = CHAT_PART_CONTENT;
    } else {
        if (s->reasoning) tags[n] = "<think>", next[n++] = CHAT_PART_REASONING;
        if (s->tool_calls) tags[n] = "<|tool_call|>", next[n++] = CHAT_PART_TOOL_CALL;
    }
    return n;
}

static bool is_space(char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }

static void emit(chat_splitter *s, const char *text, size_t len, chat_part_fn fn, void *user) {
    if (s->skip_ws) {
        while (len && is_space(*text))
            text++, len--;
        if (!len) return;
        s->skip_ws = false;
    }
    if (s->state != CHAT_PART_REASONING) {
        if (len) fn(s->state, text, len, user);
        return;
    }
    size_t body = len;
    while (body && is_space(text[body - 1]))
        body--;
    if (body) {
        if (s->n_ws) fn(s->state, s->ws, s->n_ws, user);
        s->n_ws = 0;
        fn(s->state, text, body, user);
    }
    if (body == len) return;
    if (s->n_ws + len - body > s->cap_ws) {
        size_t cap = s->cap_ws ? 2 * s->cap_ws : 64;
        while (cap < s->n_ws + len - body)
            cap *= 2;
        char *p = realloc(s->ws, cap);
        if (!p) {
            s->oom = true;
            return;
        }
        s->ws = p;
        s->cap_ws = cap;
    }
    memcpy(s->ws + s->n_ws, text + body, len - body);
    s->n_ws += len - body;
}

// Scans held + text as one: a byte at a time, looking for the tags of the current state.
int chat_splitter_put(chat_splitter *s, const char *text, size_t len, chat_part_fn fn, void *user) {
    if (!s->reasoning && !s->tool_calls) {
        emit(s, text, len, fn, user);
        return VKPHI_OK;
    }
    // Work on one buffer: what was held, then the new text.
    size_t total = s->n_held + len;
    char small[256];
    char *buf = total <= sizeof small ? small : malloc(total);
    if (!buf) return vkphi_fail(VKPHI_ERR_NOMEM, "out of memory splitting the answer");
    memcpy(buf, s->held, s->n_held);
    if (len) memcpy(buf + s->n_held, text, len);
    s->n_held = 0;
    size_t start = 0; // text of the current part not yet handed out
    for (size_t i = 0; i < total;) {
        const char *tags[2];
        enum chat_part next[2];
        size_t n_tags = tags_now(s, tags, next), matched = 0, partial = 0;
        for (size_t k = 0; k < n_tags && !matched; k++) {
            size_t tl = strlen(tags[k]);
            size_t avail = total - i < tl ? total - i : tl;
            if (memcmp(buf + i, tags[k], avail) != 0) continue;
            if (avail == tl) {
                matched = tl;
                emit(s, buf + start, i - start, fn, user);
                bool think = s->state == CHAT_PART_REASONING || next[k] == CHAT_PART_REASONING;
                s->state = next[k];
                if (s->state == CHAT_PART_TOOL_CALL) s->n_tool_calls++;
                if (think) s->skip_ws = true;
                s->n_ws = 0; // the reasoning's trailing whitespace, dropped at </think>
            } else {
                partial = avail; // the text ends inside this tag
            }
        }
        if (matched) {
            i += matched;
            start = i;
        } else if (partial) { // hold the rest back: the next piece says whether it is a tag
            emit(s, buf + start, i - start, fn, user);
            memcpy(s->held, buf + i, total - i);
            s->n_held = total - i;
            start = total;
            break;
        } else {
            i++;
        }
    }
    if (start < total) emit(s, buf + start, total - start, fn, user);
    if (buf != small) free(buf);
    if (s->oom) {
        s->oom = false;
        return vkphi_fail(VKPHI_ERR_NOMEM, "out of memory splitting the answer");
    }
    return VKPHI_OK;
}

int chat_splitter_flush(chat_splitter *s, chat_part_fn fn, void *user, bool *tool_call_open) {
    emit(s, s->held, s->n_held, fn, user);
    if (s->n_ws) fn(s->state, s->ws, s->n_ws, user); // an unfinished reasoning, as it is
    s->n_ws = 0;
    s->skip_ws = false;
    if (tool_call_open) *tool_call_open = s->state == CHAT_PART_TOOL_CALL;
    s->n_held = 0;
    s->state = CHAT_PART_CONTENT;
    s->n_tool_calls = 0;
    return VKPHI_OK;
}
