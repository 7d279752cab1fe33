/*
 * What ngx_matrix_sync.c shares with the files that help it:
 *
 *   ngx_matrix_sync_filter.c  the filters /sync applies to a response once
 *                             built (ephemeral, account data, presence,
 *                             event_fields), the options mx_sync takes
 *                             from a filter, and the unread counts
 */

#ifndef NGX_MATRIX_SYNC_H_INCLUDED_
#define NGX_MATRIX_SYNC_H_INCLUDED_

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <mx_filter.h>

#include "ngx_matrix_module.h"


/* the longest options string, its NUL included */
#define NGX_MATRIX_SYNC_OPTIONS_LEN  8

/*
 * The filter options of mx_sync (lua/sync.lua), letters: l lazy-loaded
 * members, r include_redundant_members, L include_leave, t
 * unread_thread_notifications.  f may be NULL.  buf holds the result.
 */
void ngx_matrix_sync_options(const mx_filter_t *f, u_char *buf,
    ngx_str_t *out);

/*
 * A room of the response, built: its ephemeral events and account data
 * through their filters, its state and timeline events through
 * event_fields, and for a joined room (counts not NULL) the unread
 * counts, {notification count, highlight count, {thread root, count,
 * highlight count, ...}} as mx_sync gives them.  f may be NULL.
 */
ngx_int_t ngx_matrix_sync_room_filter(ngx_matrix_req_t *mr,
    const mx_filter_t *f, mx_json_t *room, const char *room_id,
    redisReply *counts);

/* the response's global account data and presence through their filters */
ngx_int_t ngx_matrix_sync_top_filter(ngx_matrix_req_t *mr,
    const mx_filter_t *f, mx_json_t *out);

#endif /* NGX_MATRIX_SYNC_H_INCLUDED_ */
