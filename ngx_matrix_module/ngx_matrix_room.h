/*
 * What the room endpoints share: one send in progress (ngx_matrix_room.c),
 * which createRoom and the membership endpoints fill in their own ways.
 */

#ifndef NGX_MATRIX_ROOM_H_INCLUDED_
#define NGX_MATRIX_ROOM_H_INCLUDED_

#include <mx_auth.h>
#include <mx_event.h>
#include <mx_json.h>
#include <mx_room_version.h>

#include "ngx_matrix_module.h"


/* the events one request may submit: createRoom's chain */
#define NGX_MATRIX_SEND_MAX  64

typedef ngx_int_t (*ngx_matrix_sent_pt)(ngx_matrix_req_t *mr,
    const char *event_id, size_t len);

typedef struct {
    const char                 *room_id;    /* "" until a v12 create */
    const char                 *sender;
    const char                 *type;
    const char                 *state_key;  /* NULL: not state */
    mx_json_t                  *content;
    const char                 *redacts;
    const char                 *redacts_sender;  /* of the target */
    ngx_str_t                   txn_id;     /* empty: none */
    ngx_str_t                   txn_key;
    ngx_str_t                   req;        /* the waiter's number */

    const mx_room_version_t    *rv;
    mx_state_t                 *state;      /* the auth state */
    const mx_auth_event_t     **prev;
    size_t                      n_prev;
    const mx_auth_event_t      *last;

    mx_json_t                  *pdus[NGX_MATRIX_SEND_MAX];
    char                       *ids[NGX_MATRIX_SEND_MAX];
    ngx_uint_t                  n;

    unsigned                    chain:1;    /* build only, submit later */
    unsigned                    nowait:1;   /* no verdict awaited: done()
                                               once appended */
    unsigned                    quiet:1;    /* done() with NULL instead of
                                               an error answer */
    ngx_msec_t                  timeout;    /* an invite's wait for the
                                               invitee's server (0: the
                                               default) */
    ngx_matrix_sent_pt          done;       /* instead of {"event_id"} */
    ngx_int_t                 (*unknown)(ngx_matrix_req_t *mr);
                                            /* instead of 404 for a room
                                               this server does not have
                                               (a join through another) */
    ngx_int_t                 (*prepared)(ngx_matrix_req_t *mr);
                                            /* instead of build and submit:
                                               s->rv, state, prev are read
                                               (make_join's template) */
    ngx_array_t                *servers;    /* ngx_str_t: for a join
                                               through another server,
                                               those to ask first (a
                                               remote alias's) */
    void                       *data;
} ngx_matrix_send_t;


char *ngx_matrix_cstr(ngx_matrix_req_t *mr, ngx_str_t *s);
ngx_matrix_send_t *ngx_matrix_send_new(ngx_matrix_req_t *mr);
ngx_int_t ngx_matrix_send_start(ngx_matrix_req_t *mr);
ngx_int_t ngx_matrix_send_build(ngx_matrix_req_t *mr);
ngx_int_t ngx_matrix_send_submit(ngx_matrix_req_t *mr);
const mx_auth_event_t *ngx_matrix_room_event(ngx_matrix_req_t *mr,
    const mx_room_version_t *rv, const char *id, size_t id_len,
    const char *pdu, size_t pdu_len);

/* ngx_matrix_fedjoin_out.c: a local user joins, knocks on or leaves a room
 * of another server */
ngx_int_t ngx_matrix_fed_join_remote(ngx_matrix_req_t *mr);
ngx_int_t ngx_matrix_fed_knock_remote(ngx_matrix_req_t *mr);
ngx_int_t ngx_matrix_fed_leave_remote(ngx_matrix_req_t *mr);
/* and the jobs every outbound step uses */
ngx_int_t ngx_matrix_fed_path(ngx_matrix_req_t *mr, ngx_str_t *path,
    const char *prefix, const char *room, const char *second,
    const char *suffix);
ngx_int_t ngx_matrix_fed_request(ngx_matrix_req_t *mr, ngx_str_t *server,
    ngx_str_t *req, const char *method, ngx_str_t *path, char *body,
    size_t len, ngx_matrix_wait_pt next);
ngx_int_t ngx_matrix_fed_keys(ngx_matrix_req_t *mr, ngx_str_t *server,
    const char *key_ids, ngx_str_t *req, ngx_matrix_wait_pt next);
mx_json_t *ngx_matrix_fed_answer(ngx_matrix_req_t *mr, ngx_str_t *answer,
    ngx_str_t *server, const char *what, ngx_uint_t last, ngx_int_t *rc);

/* ngx_matrix_fedjoin_keys.c: the keys a remote join's state needs, one
 * keys_many job (notary: the server joined through) */
ngx_int_t ngx_matrix_fed_join_keys(ngx_matrix_req_t *mr,
    const mx_room_version_t *rv, mx_json_t *answer, ngx_str_t *notary,
    ngx_str_t *req, ngx_matrix_wait_pt next);
void ngx_matrix_fed_join_keys_done(ngx_matrix_req_t *mr, ngx_str_t *answer,
    ngx_str_t *server);

/* ngx_matrix_fedjoin.c: a server's keys as HGETALL mx:serverkeys:{<server>}
 * gives them, for mx_event_verify and mx_event_signed (ctx: the ring) */
typedef struct {
    ngx_matrix_req_t           *mr;
    ngx_str_t                   server;
    redisReply                 *keys;       /* {key id, pk, ...} */
} ngx_matrix_fed_ring_t;

ngx_int_t ngx_matrix_fed_ring_read(ngx_matrix_req_t *mr, ngx_str_t *server,
    ngx_matrix_reply_pt next);
/* stripped state events as mx_remote_invite and mx_remote_knock keep them */
char *ngx_matrix_fed_stripped(ngx_matrix_req_t *mr, mx_json_t *arr,
    size_t *len);
const unsigned char *ngx_matrix_fed_ring_key(void *ctx, const char *server,
    const char *key_id, int64_t ts);

/* ngx_matrix_fedinvite_out.c: an invite of another server's user, sent
 * there to be countersigned before the room has it (NGX_DECLINED: not one);
 * and createRoom's such invite, in the room of the send in progress */
ngx_int_t ngx_matrix_fed_invite_out(ngx_matrix_req_t *mr,
    const mx_auth_event_t *ev);
ngx_int_t ngx_matrix_fed_invite_remote(ngx_matrix_req_t *mr,
    const char *user_id, mx_json_t *content, ngx_msec_t timeout,
    ngx_matrix_sent_pt done);

/* ngx_matrix_lane.c */
void ngx_matrix_lane_apply(ngx_matrix_req_t *mr, ngx_matrix_send_t *s);
void ngx_matrix_lane_built(ngx_matrix_send_t *s, const mx_auth_event_t *ev);
void ngx_matrix_lane_close(const char *room_id);

#endif /* NGX_MATRIX_ROOM_H_INCLUDED_ */
