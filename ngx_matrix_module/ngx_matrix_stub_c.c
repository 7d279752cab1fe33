/*
 * Temporary: the handlers of filters, push rules and capabilities answer
 * 501 until their own files (ngx_matrix_filter.c, ngx_matrix_pushrules.c,
 * ngx_matrix_capabilities.c) replace this one.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_matrix_module.h"


static ngx_int_t
ngx_matrix_not_yet(ngx_matrix_req_t *mr)
{
    return ngx_matrix_send_error(mr->r, 501, "M_UNRECOGNIZED",
                                 "Not implemented yet");
}


ngx_int_t ngx_matrix_filter_post(ngx_matrix_req_t *mr) { return ngx_matrix_not_yet(mr); }
ngx_int_t ngx_matrix_filter_get(ngx_matrix_req_t *mr) { return ngx_matrix_not_yet(mr); }
ngx_int_t ngx_matrix_pushrules_get(ngx_matrix_req_t *mr) { return ngx_matrix_not_yet(mr); }
ngx_int_t ngx_matrix_pushrule(ngx_matrix_req_t *mr) { return ngx_matrix_not_yet(mr); }
ngx_int_t ngx_matrix_pushrule_attr(ngx_matrix_req_t *mr) { return ngx_matrix_not_yet(mr); }
ngx_int_t ngx_matrix_capabilities(ngx_matrix_req_t *mr) { return ngx_matrix_not_yet(mr); }
