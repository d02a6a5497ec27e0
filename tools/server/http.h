// SPDX-License-Identifier: MIT
// The server's HTTP side (libmicrohttpd, one thread per connection): routes, API
// key, body size limit, JSON answers and Server-Sent-Events streams.
//
//   GET  /health                 {"status":"ok", slots and queue}; 503 {"status":"loading"} before
//                                srv_http_ready
//   GET  /metrics                Prometheus text: requests, tokens, slots, queue, KV cache
//   GET  /v1/models              the loaded model
//   GET  /v1/models/{id}
//   POST /v1/chat/completions    chat.completion, or a chat.completion.chunk stream
//   POST /v1/completions         text_completion, or a stream of them
// The same paths without "/v1" work too.
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "api.h"
#include "engine.h"

typedef struct srv_http_config {
    const char *host;    // address to bind (numeric or a name); "127.0.0.1" by default
    uint16_t port;       // 0: any free port (srv_http_port says which)
    const char *api_key; // NULL: no key needed
    size_t max_body;     // larger request bodies get 413
    bool quiet;          // no line on stderr per request
} srv_http_config;

typedef struct srv_http srv_http;

// Listens and serves until srv_http_stop. NULL and vkphi_last_error() when it
// cannot listen. Until srv_http_ready, /health and the API answer 503 (loading)
// and /metrics says vkphi_ready 0.
srv_http *srv_http_start(const srv_http_config *cfg);
uint16_t srv_http_port(srv_http *h);
// Serves the API from now on; api and e must outlive the server.
void srv_http_ready(srv_http *h, const srv_api *api, srv_engine *e);
// Stops accepting new connections (requests on open ones are still answered).
void srv_http_quiesce(srv_http *h);
// Waits until every request under way has been answered (streams included), at most
// timeout_s seconds; false when some were still running.
bool srv_http_drain(srv_http *h, double timeout_s);
// Closes every connection, waits for their threads and frees the server.
void srv_http_stop(srv_http *h);
