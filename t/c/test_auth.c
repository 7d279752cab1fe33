/*
 * core/mx_auth: the authorization rules, rule by rule, for every room
 * version where a rule differs.
 *
 * Each row of the table is run in every room version from min to max: a
 * base room (alice created it, joined, holds 100 (v12: is a creator),
 * join rule public), the row's state events laid over it, then the row's
 * event checked against that state.  Events are written as JSON with
 * single quotes; %A stands for alice's entry in a power levels "users"
 * object, which v12 forbids.  The table ends with a summary of the rules
 * that have both an allowed and a refused case in each version.
 *
 * Then: the auth events checks (missing, foreign, duplicate, unexpected,
 * rejected), third-party invites with real signatures, the auth events
 * selection, and the legacy power level vectors of
 * ../shared/spec/vectors/power_levels_legacy.json.
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include <mx_auth.h>
#include <mx_ids.h>
#include <mx_json.h>
#include <mx_pool.h>
#include <mx_sign.h>

#include "mx_test_spec.h"


#define A  "@alice:a.test"
#define B  "@bob:b.test"
#define C  "@carol:c.test"

#define MEM(sk, snd, m)                                                      \
    "{'type':'m.room.member','state_key':'" sk "','sender':'" snd "',"       \
    "'content':{'membership':'" m "'}}"
#define JR(rule)                                                             \
    "{'type':'m.room.join_rules','state_key':'','sender':'" A "',"           \
    "'content':{'join_rule':'" rule "'}}"
#define PLS(content)                                                         \
    "{'type':'m.room.power_levels','state_key':'','sender':'" A "',"         \
    "'content':" content "}"
#define PLB(snd, content)                                                    \
    "{'type':'m.room.power_levels','state_key':'','sender':'" snd "',"       \
    "'content':" content "}"
#define MSG(snd)                                                             \
    "{'type':'m.room.message','sender':'" snd "','content':{'body':'hi'}}"
#define STATE(type, sk, snd)                                                 \
    "{'type':'" type "','state_key':'" sk "','sender':'" snd "',"            \
    "'content':{}}"

/* bob holds 50, carol 0 unless a row says otherwise */
#define PL_BOB50   PLS("{'users':{%A'" B "':50}}")
#define SIG_A      "'signatures':{'a.test':{'ed25519:1':'c2ln'}}"

#define NO_PL      0x01         /* base room without power levels */

#define MAXV       12


typedef struct {
    const char  *rule;          /* the rule the row exercises */
    int          min, max;      /* room versions */
    unsigned     flags;
    const char  *state[4];      /* laid over the base room, in order */
    const char  *event;
    const char  *expect;        /* the refusal, or NULL: allowed */
} auth_case_t;


static const auth_case_t  cases[] = {

    /* 1: m.room.create */
    { "create", 1, 12, 0, { NULL },
      "{'type':'m.room.create','state_key':'','sender':'" A "',"
      "'prev_events':[],'content':{'creator':'" A "'}}", NULL },
    { "create", 1, 12, 0, { NULL },
      "{'type':'m.room.create','state_key':'','sender':'" A "',"
      "'prev_events':['$x:a.test'],'content':{'creator':'" A "'}}",
      "create.prev_events" },
    { "create", 1, 10, 0, { NULL },
      "{'type':'m.room.create','state_key':'','sender':'" A "',"
      "'prev_events':[],'content':{}}", "create.no_creator" },
    { "create", 11, 12, 0, { NULL },
      "{'type':'m.room.create','state_key':'','sender':'" A "',"
      "'prev_events':[],'content':{}}", NULL },
    { "create", 1, 12, 0, { NULL },
      "{'type':'m.room.create','state_key':'','sender':'" A "',"
      "'prev_events':[],'content':{'creator':'" A "','room_version':'99'}}",
      "create.room_version" },
    { "create.room_id", 1, 11, 0, { NULL },
      "{'type':'m.room.create','state_key':'','sender':'" A "',"
      "'room_id':'!r:b.test','prev_events':[],"
      "'content':{'creator':'" A "'}}", "create.room_id_domain" },
    { "create.room_id", 12, 12, 0, { NULL },
      "{'type':'m.room.create','state_key':'','sender':'" A "',"
      "'room_id':'!r:a.test','prev_events':[],'content':{}}",
      "create.room_id" },
    { "create.room_id", 1, 12, 0, { NULL },
      "{'type':'m.room.create','state_key':'','sender':'" A "',"
      "'prev_events':[],'content':{'creator':'" A "'}}", NULL },
    { "create.additional_creators", 12, 12, 0, { NULL },
      "{'type':'m.room.create','state_key':'','sender':'" A "',"
      "'prev_events':[],'content':{'additional_creators':['bob']}}",
      "create.additional_creators" },
    { "create.additional_creators", 12, 12, 0, { NULL },
      "{'type':'m.room.create','state_key':'','sender':'" A "',"
      "'prev_events':[],'content':{'additional_creators':['" B "']}}",
      NULL },

    /* 2 (v12): the room ID names the create event */
    { "room_id.not_create", 12, 12, 0, { NULL },
      "{'type':'m.room.message','sender':'" A "','room_id':'!other',"
      "'content':{}}", "room_id.not_create" },
    { "room_id.not_create", 12, 12, 0, { NULL }, MSG(A), NULL },

    /* m.federate */
    { "federate", 1, 12, 0,
      { "{'type':'m.room.create','state_key':'','sender':'" A "',"
        "'content':{'creator':'" A "','m.federate':false}}",
        MEM(B, B, "join") }, MSG(B), "federate" },
    { "federate", 1, 12, 0,
      { "{'type':'m.room.create','state_key':'','sender':'" A "',"
        "'content':{'creator':'" A "','m.federate':false}}" }, MSG(A),
      NULL },

    /* m.room.aliases: its own rule in v1-v5, an ordinary state event after */
    { "aliases.domain", 1, 5, 0, { NULL },
      "{'type':'m.room.aliases','state_key':'b.test','sender':'" B "',"
      "'content':{'aliases':[]}}", NULL },
    { "aliases.domain", 6, 12, 0, { NULL },
      "{'type':'m.room.aliases','state_key':'b.test','sender':'" B "',"
      "'content':{'aliases':[]}}", "sender_not_joined" },
    { "aliases.domain", 1, 5, 0, { MEM(B, B, "join") },
      "{'type':'m.room.aliases','state_key':'a.test','sender':'" B "',"
      "'content':{'aliases':[]}}", "aliases.domain" },
    { "aliases.domain", 6, 12, 0, { NULL },
      "{'type':'m.room.aliases','state_key':'x.test','sender':'" A "',"
      "'content':{'aliases':[]}}", NULL },
    { "aliases.no_state_key", 1, 5, 0, { NULL },
      "{'type':'m.room.aliases','sender':'" B "','content':{}}",
      "aliases.no_state_key" },

    /* 5.1 */
    { "member.malformed", 1, 12, 0, { NULL },
      "{'type':'m.room.member','state_key':'" B "','sender':'" B "',"
      "'content':{}}", "member.malformed" },
    { "member.malformed", 1, 12, 0, { NULL },
      "{'type':'m.room.member','sender':'" B "',"
      "'content':{'membership':'join'}}", "member.malformed" },

    /* 5.3.1: the creator's first join; "creator" until v10, sender after */
    { "join.creator", 1, 12, 0, { JR("invite") },
      "{'type':'m.room.member','state_key':'" A "','sender':'" A "',"
      "'prev_events':['$CREATE'],'content':{'membership':'join'}}", NULL },
    { "join.creator", 1, 10, 0,
      { "{'type':'m.room.create','state_key':'','sender':'" A "',"
        "'content':{'creator':'" B "'}}", JR("invite") },
      "{'type':'m.room.member','state_key':'" B "','sender':'" B "',"
      "'prev_events':['$CREATE'],'content':{'membership':'join'}}", NULL },
    { "join.creator", 11, 12, 0,
      { "{'type':'m.room.create','state_key':'','sender':'" A "',"
        "'content':{'creator':'" B "'}}", JR("invite") },
      "{'type':'m.room.member','state_key':'" B "','sender':'" B "',"
      "'prev_events':['$CREATE'],'content':{'membership':'join'}}",
      "join.not_invited" },

    /* 5.3.2 - 5.3.3 */
    { "join.not_self", 1, 12, 0, { NULL }, MEM(B, A, "join"),
      "join.not_self" },
    { "join.not_self", 1, 12, 0, { NULL }, MEM(B, B, "join"), NULL },
    { "join.banned", 1, 12, 0, { MEM(B, A, "ban") }, MEM(B, B, "join"),
      "join.banned" },
    { "join.banned", 1, 12, 0, { MEM(B, A, "leave") }, MEM(B, B, "join"),
      NULL },

    /* 5.3.4: invite (and knock from v7) */
    { "join.not_invited", 1, 12, 0, { JR("invite") }, MEM(B, B, "join"),
      "join.not_invited" },
    { "join.not_invited", 1, 12, 0, { JR("invite"), MEM(B, A, "invite") },
      MEM(B, B, "join"), NULL },
    { "join.not_invited", 1, 12, 0, { JR("invite"), MEM(B, B, "join") },
      MEM(B, B, "join"), NULL },
    { "join.knock_rule", 7, 12, 0, { JR("knock"), MEM(B, A, "invite") },
      MEM(B, B, "join"), NULL },
    { "join.knock_rule", 7, 12, 0, { JR("knock") }, MEM(B, B, "join"),
      "join.not_invited" },
    { "join.knock_rule", 1, 6, 0, { JR("knock"), MEM(B, A, "invite") },
      MEM(B, B, "join"), "join.not_allowed" },

    /* 5.3.5: restricted (v8) and knock_restricted (v10) */
    { "join.restricted", 8, 12, 0, { JR("restricted") },
      "{'type':'m.room.member','state_key':'" B "','sender':'" B "',"
      SIG_A ",'content':{'membership':'join',"
      "'join_authorised_via_users_server':'" A "'}}", NULL },
    { "join.restricted", 1, 7, 0, { JR("restricted") },
      "{'type':'m.room.member','state_key':'" B "','sender':'" B "',"
      SIG_A ",'content':{'membership':'join',"
      "'join_authorised_via_users_server':'" A "'}}", "join.not_allowed" },
    { "join.restricted", 8, 12, 0, { JR("restricted"), MEM(B, A, "invite") },
      MEM(B, B, "join"), NULL },
    { "join.restricted", 8, 12, 0, { JR("restricted") }, MEM(B, B, "join"),
      "join.restricted_no_authoriser" },
    { "join.restricted", 8, 12, 0, { JR("restricted") },
      "{'type':'m.room.member','state_key':'" B "','sender':'" B "',"
      "'signatures':{'c.test':{'ed25519:1':'c2ln'}},"
      "'content':{'membership':'join',"
      "'join_authorised_via_users_server':'" C "'}}",
      "join.restricted_authoriser" },
    { "join.restricted", 8, 12, 0,
      { JR("restricted"), MEM(C, C, "join"),
        PLS("{'users':{%A'" C "':10},'invite':50}") },
      "{'type':'m.room.member','state_key':'" B "','sender':'" B "',"
      "'signatures':{'c.test':{'ed25519:1':'c2ln'}},"
      "'content':{'membership':'join',"
      "'join_authorised_via_users_server':'" C "'}}",
      "join.restricted_authoriser" },
    { "join.knock_restricted", 10, 12, 0, { JR("knock_restricted") },
      "{'type':'m.room.member','state_key':'" B "','sender':'" B "',"
      SIG_A ",'content':{'membership':'join',"
      "'join_authorised_via_users_server':'" A "'}}", NULL },
    { "join.knock_restricted", 1, 9, 0, { JR("knock_restricted") },
      "{'type':'m.room.member','state_key':'" B "','sender':'" B "',"
      SIG_A ",'content':{'membership':'join',"
      "'join_authorised_via_users_server':'" A "'}}", "join.not_allowed" },

    /* 5.2 (v8): the authorising server signed the join */
    { "member.authoriser_signature", 8, 12, 0, { NULL },
      "{'type':'m.room.member','state_key':'" B "','sender':'" B "',"
      "'content':{'membership':'join',"
      "'join_authorised_via_users_server':'" A "'}}",
      "member.authoriser_signature" },
    { "member.authoriser_signature", 1, 7, 0, { NULL },
      "{'type':'m.room.member','state_key':'" B "','sender':'" B "',"
      "'content':{'membership':'join',"
      "'join_authorised_via_users_server':'" A "'}}", NULL },
    { "member.authoriser_signature", 8, 12, 0, { NULL },
      "{'type':'m.room.member','state_key':'" B "','sender':'" B "',"
      SIG_A ",'content':{'membership':'join',"
      "'join_authorised_via_users_server':'" A "'}}", NULL },

    /* 5.3.6 - 5.3.7 */
    { "join.not_allowed", 1, 12, 0, { JR("private") }, MEM(B, B, "join"),
      "join.not_allowed" },
    { "join.not_allowed", 1, 12, 0, { JR("public") }, MEM(B, B, "join"),
      NULL },

    /* 5.4: invite */
    { "invite.sender_not_joined", 1, 12, 0, { NULL }, MEM(B, C, "invite"),
      "invite.sender_not_joined" },
    { "invite.sender_not_joined", 1, 12, 0, { NULL }, MEM(B, A, "invite"),
      NULL },
    { "invite.target_joined_or_banned", 1, 12, 0, { MEM(B, B, "join") },
      MEM(B, A, "invite"), "invite.target_joined_or_banned" },
    { "invite.target_joined_or_banned", 1, 12, 0, { MEM(B, A, "ban") },
      MEM(B, A, "invite"), "invite.target_joined_or_banned" },
    { "invite.target_joined_or_banned", 1, 12, 0, { MEM(B, B, "leave") },
      MEM(B, A, "invite"), NULL },
    { "invite.power", 1, 12, 0,
      { MEM(B, B, "join"), PLS("{'users':{%A'" B "':10},'invite':50}") },
      MEM(C, B, "invite"), "invite.power" },
    { "invite.power", 1, 12, 0,
      { MEM(B, B, "join"), PLS("{'users':{%A'" B "':50},'invite':50}") },
      MEM(C, B, "invite"), NULL },

    /* 5.5: leave */
    { "leave.not_member", 1, 12, 0, { NULL }, MEM(B, B, "leave"),
      "leave.not_member" },
    { "leave.not_member", 1, 12, 0, { MEM(B, B, "join") },
      MEM(B, B, "leave"), NULL },
    { "leave.not_member", 1, 12, 0, { MEM(B, A, "invite") },
      MEM(B, B, "leave"), NULL },
    { "leave.knock", 7, 12, 0, { MEM(B, B, "knock") }, MEM(B, B, "leave"),
      NULL },
    { "leave.knock", 1, 6, 0, { MEM(B, B, "knock") }, MEM(B, B, "leave"),
      "leave.not_member" },
    { "leave.sender_not_joined", 1, 12, 0, { MEM(B, B, "join") },
      MEM(B, C, "leave"), "leave.sender_not_joined" },
    { "leave.kick_power", 1, 12, 0,
      { MEM(B, B, "join"), MEM(C, C, "join"),
        PLS("{'users':{%A'" B "':50,'" C "':50}}") },
      MEM(C, B, "leave"), "leave.kick_power" },
    { "leave.kick_power", 1, 12, 0,
      { MEM(B, B, "join"), MEM(C, C, "join"), PL_BOB50 },
      MEM(C, B, "leave"), NULL },
    { "leave.kick_power", 1, 12, 0,
      { MEM(B, B, "join"), MEM(C, C, "join"),
        PLS("{'users':{%A'" B "':50},'kick':75}") },
      MEM(C, B, "leave"), "leave.kick_power" },
    { "leave.unban_power", 1, 12, 0,
      { MEM(B, B, "join"), MEM(C, A, "ban"),
        PLS("{'users':{%A'" B "':60},'kick':50,'ban':75}") },
      MEM(C, B, "leave"), "leave.unban_power" },
    { "leave.unban_power", 1, 12, 0,
      { MEM(B, B, "join"), MEM(C, A, "ban"),
        PLS("{'users':{%A'" B "':75},'kick':50,'ban':75}") },
      MEM(C, B, "leave"), NULL },

    /* 5.6: ban */
    { "ban.sender_not_joined", 1, 12, 0, { MEM(B, B, "join") },
      MEM(B, C, "ban"), "ban.sender_not_joined" },
    { "ban.power", 1, 12, 0, { MEM(B, B, "join"), PL_BOB50 },
      MEM(B, A, "ban"), NULL },
    { "ban.power", 1, 12, 0, { MEM(B, B, "join"), PL_BOB50 },
      MEM(A, B, "ban"), "ban.power" },
    { "ban.power", 1, 12, 0,
      { MEM(B, B, "join"), PLS("{'users':{%A'" B "':50},'ban':60}") },
      MEM(C, B, "ban"), "ban.power" },
    { "ban.power", 1, 12, 0, { MEM(B, B, "join"), PL_BOB50 },
      MEM(C, B, "ban"), NULL },

    /* 5.7: knock (v7), knock_restricted (v10) */
    { "knock.join_rule", 7, 12, 0, { JR("knock") }, MEM(B, B, "knock"),
      NULL },
    { "knock.join_rule", 7, 12, 0, { JR("public") }, MEM(B, B, "knock"),
      "knock.join_rule" },
    { "knock.room_version", 1, 6, 0, { JR("knock") },
      MEM(B, B, "knock"), "knock.room_version" },
    { "knock.knock_restricted", 10, 12, 0, { JR("knock_restricted") },
      MEM(B, B, "knock"), NULL },
    { "knock.knock_restricted", 7, 9, 0, { JR("knock_restricted") },
      MEM(B, B, "knock"), "knock.join_rule" },
    { "knock.not_self", 7, 12, 0, { JR("knock") }, MEM(B, A, "knock"),
      "knock.not_self" },
    { "knock.membership", 7, 12, 0, { JR("knock"), MEM(B, A, "ban") },
      MEM(B, B, "knock"), "knock.membership" },
    { "knock.membership", 7, 12, 0, { JR("knock"), MEM(B, B, "leave") },
      MEM(B, B, "knock"), NULL },
    { "member.unknown_membership", 1, 12, 0, { NULL }, MEM(B, B, "dance"),
      "member.unknown_membership" },

    /* 6 */
    { "sender_not_joined", 1, 12, 0, { NULL }, MSG(C), "sender_not_joined" },
    { "sender_not_joined", 1, 12, 0, { MEM(C, C, "join") }, MSG(C), NULL },

    /* 7 */
    { "third_party_invite.power", 1, 12, 0,
      { MEM(B, B, "join"), PLS("{'users':{%A'" B "':10},'invite':50}") },
      STATE("m.room.third_party_invite", "tok", B),
      "third_party_invite.power" },
    { "third_party_invite.power", 1, 12, 0,
      { MEM(B, B, "join"), PLS("{'users':{%A'" B "':50},'invite':50}") },
      STATE("m.room.third_party_invite", "tok", B), NULL },

    /* 8 */
    { "event_power", 1, 12, 0,
      { MEM(B, B, "join"),
        PLS("{'users':{%A'" B "':50},'events':{'m.room.name':100}}") },
      STATE("m.room.name", "", B), "event_power" },
    { "event_power", 1, 12, 0,
      { MEM(B, B, "join"),
        PLS("{'users':{%A'" B "':50},'events':{'m.room.name':100}}") },
      STATE("m.room.topic", "", B), NULL },
    { "event_power", 1, 12, 0, { MEM(B, B, "join") },
      STATE("m.room.topic", "", B), "event_power" },
    { "event_power", 1, 12, NO_PL, { MEM(B, B, "join") },
      STATE("m.room.topic", "", B), NULL },

    /* 9 */
    { "state_key_user", 1, 12, 0, { NULL }, STATE("com.example", B, A),
      "state_key_user" },
    { "state_key_user", 1, 12, 0, { NULL }, STATE("com.example", A, A),
      NULL },

    /* 10: power levels; the first one needs nothing */
    { "power_levels.first", 1, 12, NO_PL, { MEM(B, B, "join") },
      PLB(B, "{'users':{'" B "':100}}"), NULL },
    { "power_levels.users", 1, 12, 0, { NULL },
      PLS("{'users':{%A'bob':50}}"), "power_levels.users" },
    { "power_levels.users", 1, 12, 0, { NULL },
      PLS("{'users':[]}"), "power_levels.users" },
    { "power_levels.users", 1, 9, 0, { NULL },
      PLS("{'users':{%A'" B "':' +50 '}}"), NULL },
    { "power_levels.users", 10, 12, 0, { NULL },
      PLS("{'users':{%A'" B "':'50'}}"), "power_levels.users" },
    { "power_levels.users", 1, 9, 0, { NULL },
      PLS("{'users':{%A'" B "':'5.0'}}"), "power_levels.users" },
    { "power_levels.float", 1, 5, 0, { NULL },
      PLS("{'users':{%A'" B "':50.57}}"), NULL },
    { "power_levels.float", 6, 12, 0, { NULL },
      PLS("{'users':{%A'" B "':50.57}}"), "power_levels.users" },
    { "power_levels.not_integer", 1, 9, 0, { NULL },
      PLS("{'users':{%A'" B "':50},'ban':'50','events':{'m.x':'7'}}"), NULL },
    { "power_levels.not_integer", 10, 12, 0, { NULL },
      PLS("{'users':{%A'" B "':50},'ban':'50'}"), "power_levels.not_integer" },
    { "power_levels.not_integer", 10, 12, 0, { NULL },
      PLS("{'users':{%A'" B "':50},'events':{'m.x':'7'}}"),
      "power_levels.not_integer" },
    { "power_levels.not_integer", 10, 12, 0, { NULL },
      PLS("{'users':{%A'" B "':50},'notifications':{'room':true}}"),
      "power_levels.not_integer" },
    { "power_levels.change_current", 1, 12, 0,
      { MEM(B, B, "join"), PLS("{'users':{%A'" B "':50},'kick':75}") },
      PLB(B, "{'users':{%A'" B "':50},'kick':50}"),
      "power_levels.change_current" },
    { "power_levels.change_current", 1, 12, 0,
      { MEM(B, B, "join"), PLS("{'users':{%A'" B "':50},'kick':50}") },
      PLB(B, "{'users':{%A'" B "':50},'kick':20}"), NULL },
    { "power_levels.change_new", 1, 12, 0,
      { MEM(B, B, "join"), PL_BOB50 },
      PLB(B, "{'users':{%A'" B "':50},'ban':60}"), "power_levels.change_new" },
    { "power_levels.change_new", 1, 12, 0,
      { MEM(B, B, "join"), PL_BOB50 },
      PLB(B, "{'users':{%A'" B "':50},'ban':40}"), NULL },
    { "power_levels.events_current", 1, 12, 0,
      { MEM(B, B, "join"),
        PLS("{'users':{%A'" B "':50},'events':{'m.room.name':75}}") },
      PLB(B, "{'users':{%A'" B "':50}}"), "power_levels.events_current" },
    { "power_levels.events_new", 1, 12, 0, { MEM(B, B, "join"), PL_BOB50 },
      PLB(B, "{'users':{%A'" B "':50},'events':{'m.room.topic':60}}"),
      "power_levels.events_new" },
    { "power_levels.events_new", 1, 12, 0, { MEM(B, B, "join"), PL_BOB50 },
      PLB(B, "{'users':{%A'" B "':50},'events':{'m.room.topic':40}}"), NULL },
    { "power_levels.notifications_new", 6, 12, 0,
      { MEM(B, B, "join"), PL_BOB50 },
      PLB(B, "{'users':{%A'" B "':50},'notifications':{'room':60}}"),
      "power_levels.notifications_new" },
    { "power_levels.notifications_new", 1, 5, 0,
      { MEM(B, B, "join"), PL_BOB50 },
      PLB(B, "{'users':{%A'" B "':50},'notifications':{'room':60}}"), NULL },
    { "power_levels.notifications_current", 6, 12, 0,
      { MEM(B, B, "join"),
        PLS("{'users':{%A'" B "':50},'notifications':{'room':70}}") },
      PLB(B, "{'users':{%A'" B "':50}}"),
      "power_levels.notifications_current" },
    { "power_levels.notifications_current", 1, 5, 0,
      { MEM(B, B, "join"),
        PLS("{'users':{%A'" B "':50},'notifications':{'room':70}}") },
      PLB(B, "{'users':{%A'" B "':50}}"), NULL },
    { "power_levels.users_current", 1, 12, 0,
      { MEM(B, B, "join"), PLS("{'users':{%A'" B "':50,'" C "':50}}") },
      PLB(B, "{'users':{%A'" B "':50,'" C "':10}}"),
      "power_levels.users_current" },
    { "power_levels.users_current", 1, 12, 0,
      { MEM(B, B, "join"), PLS("{'users':{%A'" B "':50,'" C "':50}}") },
      PLB(B, "{'users':{%A'" B "':10,'" C "':50}}"), NULL },
    { "power_levels.users_new", 1, 12, 0,
      { MEM(B, B, "join"), PL_BOB50 },
      PLB(B, "{'users':{%A'" B "':50,'" C "':75}}"),
      "power_levels.users_new" },
    { "power_levels.users_new", 1, 12, 0,
      { MEM(B, B, "join"), PL_BOB50 },
      PLB(B, "{'users':{%A'" B "':50,'" C "':50}}"), NULL },
    { "power_levels.creator_in_users", 12, 12, 0, { NULL },
      PLS("{'users':{'" A "':100}}"), "power_levels.creator_in_users" },
    { "power_levels.creator_in_users", 12, 12, 0,
      { "{'type':'m.room.create','state_key':'','sender':'" A "',"
        "'content':{'additional_creators':['" B "']}}" },
      PLS("{'users':{'" B "':50}}"), "power_levels.creator_in_users" },
    { "power_levels.creator_in_users", 1, 11, 0, { NULL },
      PLS("{'users':{'" A "':100}}"), NULL },
    { "power_levels.creator_in_users", 12, 12, 0, { NULL },
      PLS("{'users':{'" B "':50}}"), NULL },

    /* v12: creators are infinitely powerful, even additional ones */
    { "creators.infinite", 12, 12, 0,
      { "{'type':'m.room.create','state_key':'','sender':'" A "',"
        "'content':{'additional_creators':['" B "']}}",
        MEM(B, B, "join"), PLS("{'users':{'" C "':99},'ban':99}") },
      MEM(C, B, "ban"), NULL },
    { "creators.infinite", 12, 12, 0,
      { "{'type':'m.room.create','state_key':'','sender':'" A "',"
        "'content':{'additional_creators':['" B "']}}",
        MEM(B, B, "join") }, MEM(A, B, "ban"), "ban.power" },
    { "creators.infinite", 1, 11, 0,
      { MEM(B, B, "join"), MEM(C, C, "join"),
        PLS("{'users':{%A'" C "':99},'ban':99}") },
      MEM(C, A, "ban"), NULL },

    /* the other side of the rules above, where it was missing */
    { "aliases.no_state_key", 1, 5, 0, { NULL },
      "{'type':'m.room.aliases','state_key':'b.test','sender':'" B "',"
      "'content':{}}", NULL },
    { "member.malformed", 1, 12, 0, { NULL }, MEM(B, B, "join"), NULL },
    { "member.unknown_membership", 1, 12, 0, { NULL }, MEM(B, B, "leave"),
      "leave.not_member" },
    { "member.unknown_membership", 1, 12, 0, { MEM(B, A, "invite") },
      MEM(B, B, "leave"), NULL },
    { "join.creator", 1, 12, 0, { JR("invite") },
      "{'type':'m.room.member','state_key':'" B "','sender':'" B "',"
      "'prev_events':['$CREATE'],'content':{'membership':'join'}}",
      "join.not_invited" },
    { "join.knock_rule", 1, 6, 0, { JR("invite"), MEM(B, A, "invite") },
      MEM(B, B, "join"), NULL },
    { "join.restricted", 1, 12, 0, { JR("restricted") },
      "{'type':'m.room.member','state_key':'" A "','sender':'" A "',"
      "'prev_events':['$CREATE'],'content':{'membership':'join'}}", NULL },
    { "join.knock_restricted", 1, 12, 0, { JR("knock_restricted") },
      "{'type':'m.room.member','state_key':'" A "','sender':'" A "',"
      "'prev_events':['$CREATE'],'content':{'membership':'join'}}", NULL },
    { "join.knock_restricted", 10, 12, 0, { JR("knock_restricted") },
      MEM(B, B, "join"), "join.restricted_no_authoriser" },
    { "join.knock_restricted", 10, 12, 0,
      { JR("knock_restricted"), MEM(B, A, "invite") }, MEM(B, B, "join"),
      NULL },
    { "member.authoriser_signature", 1, 7, 0, { JR("restricted") },
      "{'type':'m.room.member','state_key':'" B "','sender':'" B "',"
      "'content':{'membership':'join',"
      "'join_authorised_via_users_server':'" A "'}}", "join.not_allowed" },
    { "invite.power", 1, 12, 0, { MEM(B, B, "join") }, MEM(C, B, "invite"),
      NULL },
    { "leave.sender_not_joined", 1, 12, 0, { MEM(B, B, "join") },
      MEM(B, A, "leave"), NULL },
    { "leave.knock", 7, 12, 0, { MEM(B, B, "knock") }, MEM(B, C, "leave"),
      "leave.sender_not_joined" },
    { "leave.knock", 1, 6, 0, { MEM(B, A, "invite") }, MEM(B, B, "leave"),
      NULL },
    { "leave.unban_power", 1, 12, 0, { MEM(C, A, "ban") }, MEM(C, A, "leave"),
      NULL },
    { "ban.sender_not_joined", 1, 12, 0, { MEM(B, B, "join") },
      MEM(B, A, "ban"), NULL },
    { "knock.not_self", 7, 12, 0, { JR("knock") }, MEM(B, B, "knock"), NULL },
    { "knock.knock_restricted", 10, 12, 0,
      { JR("knock_restricted"), MEM(B, A, "ban") }, MEM(B, B, "knock"),
      "knock.membership" },
    { "knock.knock_restricted", 7, 9, 0, { JR("knock") }, MEM(B, B, "knock"),
      NULL },
    { "join.banned", 1, 12, 0, { MEM(B, A, "invite") }, MEM(B, B, "join"),
      NULL },
    { "join.not_allowed", 1, 12, 0, { JR("private"), MEM(B, B, "join") },
      MEM(B, B, "join"), "join.not_allowed" },
    { "sender_not_joined", 1, 12, 0, { MEM(C, A, "invite") }, MSG(C),
      "sender_not_joined" },
    { "third_party_invite.power", 1, 12, 0, { NULL },
      STATE("m.room.third_party_invite", "tok", A), NULL },
    { "state_key_user", 1, 12, 0, { NULL }, STATE("com.example", "@", A),
      "state_key_user" },
    { "power_levels.first", 1, 12, NO_PL, { NULL },
      PLB(B, "{'users':{'" B "':100}}"), "sender_not_joined" },
    { "power_levels.users", 10, 12, 0, { NULL },
      PLS("{'users':{%A'" B "':50}}"), NULL },
    { "power_levels.float", 1, 5, 0, { NULL },
      PLS("{'users':{%A'" B "':1e30}}"), "power_levels.users" },
    { "power_levels.float", 6, 12, 0, { NULL },
      PLS("{'users':{%A'" B "':50}}"), NULL },
    { "power_levels.not_integer", 1, 9, 0, { NULL },
      PLS("{'users':{%A'" B "':'fifty'}}"), "power_levels.users" },
    { "power_levels.not_integer", 10, 12, 0, { NULL },
      PLS("{'users':{%A'" B "':50},'ban':50,'events':{'m.x':7},"
          "'notifications':{'room':50}}"), NULL },
    { "power_levels.events_current", 1, 12, 0,
      { MEM(B, B, "join"),
        PLS("{'users':{%A'" B "':50},'events':{'m.room.name':40}}") },
      PLB(B, "{'users':{%A'" B "':50}}"), NULL },
    { "power_levels.notifications_new", 1, 5, 0,
      { MEM(B, B, "join"), PL_BOB50 },
      PLB(B, "{'users':{%A'" B "':50},'events':{'m.room.topic':60}}"),
      "power_levels.events_new" },
    { "power_levels.notifications_new", 6, 12, 0,
      { MEM(B, B, "join"), PL_BOB50 },
      PLB(B, "{'users':{%A'" B "':50},'notifications':{'room':50}}"), NULL },
    { "power_levels.notifications_current", 1, 5, 0,
      { MEM(B, B, "join"),
        PLS("{'users':{%A'" B "':50},'events':{'m.room.topic':70}}") },
      PLB(B, "{'users':{%A'" B "':50}}"), "power_levels.events_current" },
    { "power_levels.notifications_current", 6, 12, 0,
      { MEM(B, B, "join"),
        PLS("{'users':{%A'" B "':50},'notifications':{'room':40}}") },
      PLB(B, "{'users':{%A'" B "':50}}"), NULL },
    { "power_levels.creator_in_users", 1, 11, 0, { NULL },
      PLS("{'users':{'" A "':100,'" B "':101}}"), "power_levels.users_new" },
    { "creators.infinite", 1, 11, 0,
      { MEM(C, C, "join"), PLS("{'users':{'" A "':50,'" C "':99}}") },
      MEM(C, A, "ban"), "ban.power" },

    /* 11 (v1, v2): redactions */
    { "redaction.power", 1, 2, 0, { MEM(B, B, "join") },
      "{'type':'m.room.redaction','sender':'" B "','event_id':'$r:b.test',"
      "'redacts':'$x:a.test','content':{}}", "redaction.power" },
    { "redaction.power", 1, 2, 0, { MEM(B, B, "join") },
      "{'type':'m.room.redaction','sender':'" B "','event_id':'$r:b.test',"
      "'redacts':'$x:b.test','content':{}}", NULL },
    { "redaction.power", 1, 2, 0, { NULL },
      "{'type':'m.room.redaction','sender':'" A "',"
      "'redacts':'$x:b.test','content':{}}", NULL },
    { "redaction.power", 3, 12, 0, { MEM(B, B, "join") },
      "{'type':'m.room.redaction','sender':'" B "',"
      "'redacts':'$x:a.test','content':{'redacts':'$x:a.test'}}", NULL },
    { "redaction.power", 3, 12, 0,
      { MEM(B, B, "join"),
        PLS("{'users':{%A},'events':{'m.room.redaction':50}}") },
      "{'type':'m.room.redaction','sender':'" B "',"
      "'redacts':'$x:a.test','content':{'redacts':'$x:a.test'}}",
      "event_power" },
};

#define NCASES  (sizeof(cases) / sizeof(cases[0]))


/* --- building rooms ----------------------------------------------------------- */

typedef struct {
    mx_pool_t                 *pool;
    const mx_room_version_t   *rv;
    mx_state_t                *state;
    const mx_auth_event_t     *create;
    char                       room_id[64];
    int                        seq;
} room_t;


static const char *
create_id(const mx_room_version_t *rv)
{
    return rv->room_id_from_create ? "$CREATEhash" : "$CREATE:a.test";
}


/*
 * Event JSON from a row: single quotes become double quotes, %A alice's
 * users entry (none in v12), '$CREATE' the create event's ID; then the
 * fields every PDU has are filled in unless the row set them.
 */

static mx_auth_event_t *
mk(room_t *r, const char *tmpl)
{
    char              buf[2048], id[64], *o;
    const char       *p, *why, *alice;
    mx_json_t        *v, *arr;
    mx_json_error_t   err;
    mx_auth_event_t  *ev;
    int               is_create;

    alice = r->rv->room_id_from_create ? "" : "\"" A "\":100,";
    o = buf;

    for (p = tmpl; *p; p++) {
        if (p[0] == '%' && p[1] == 'A') {
            o += sprintf(o, "%s", alice);
            p++;

            /* "{%A}" in v12 would leave a trailing comma otherwise */

        } else if (strncmp(p, "$CREATE'", 8) == 0) {
            o += sprintf(o, "%s", create_id(r->rv));
            p += 6;

        } else {
            *o++ = (*p == '\'') ? '"' : *p;
        }

        assert_true(o < buf + sizeof(buf) - 64);
    }

    *o = '\0';

    /* {"a":1,} is not JSON: drop a comma before a closing brace */
    for (o = buf; *o; o++) {
        if (o[0] == ',' && o[1] == '}') {
            memmove(o, o + 1, strlen(o));
        }
    }

    v = mx_json_parse(r->pool, buf, strlen(buf), &err);
    if (v == NULL) {
        fail_msg("bad row JSON (%s): %s", err.msg, buf);
    }

    is_create = strcmp(mx_json_get_str(v, "type", NULL), "m.room.create") == 0;

    if (mx_json_get(v, "event_id") == NULL) {
        if (is_create) {
            snprintf(id, sizeof(id), "%s", create_id(r->rv));
        } else {
            snprintf(id, sizeof(id), "$e%d:a.test", ++r->seq);
        }

        assert_int_equal(mx_json_set_str(r->pool, v, "event_id", id), 0);
    }

    if (mx_json_get(v, "room_id") == NULL
        && !(is_create && r->rv->room_id_from_create))
    {
        assert_int_equal(mx_json_set_str(r->pool, v, "room_id", r->room_id),
                         0);
    }

    if (is_create && mx_json_get(mx_json_get(v, "content"), "room_version")
                     == NULL)
    {
        mx_json_set_str(r->pool, mx_json_get(v, "content"), "room_version",
                        r->rv->id);
    }

    if (mx_json_get(v, "prev_events") == NULL) {
        arr = mx_json_array(r->pool);
        assert_non_null(arr);
        mx_json_append(r->pool, arr, mx_json_str(r->pool, "$prev:a.test"));
        mx_json_set(r->pool, v, "prev_events", arr);
    }

    mx_json_set_int(r->pool, v, "origin_server_ts", 1000 + r->seq);
    mx_json_set_int(r->pool, v, "depth", 10 + r->seq);

    ev = mx_auth_event_from_json(r->pool, v, NULL, &why);
    if (ev == NULL) {
        fail_msg("row event: %s: %s", why, buf);
    }

    return ev;
}


static void
put(room_t *r, const char *tmpl)
{
    mx_auth_event_t  *ev;

    ev = mk(r, tmpl);
    assert_int_equal(mx_state_put(r->state, ev), 0);

    if (strcmp(ev->type, "m.room.create") == 0) {
        r->create = ev;
    }
}


/* alice creates, joins, holds 100 (a creator in v12); join rule public */
static void
room_base(room_t *r, mx_pool_t *pool, const mx_room_version_t *rv,
    unsigned flags)
{
    memset(r, 0, sizeof(*r));
    r->pool = pool;
    r->rv = rv;
    r->state = mx_state_create(pool, 16);
    assert_non_null(r->state);

    if (rv->room_id_from_create) {
        snprintf(r->room_id, sizeof(r->room_id), "!%s", create_id(rv) + 1);
    } else {
        snprintf(r->room_id, sizeof(r->room_id), "!room:a.test");
    }

    put(r, "{'type':'m.room.create','state_key':'','sender':'" A "',"
        "'prev_events':[],'content':{'creator':'" A "'}}");
    put(r, MEM(A, A, "join"));

    if (!(flags & NO_PL)) {
        put(r, PLS("{'users':{%A}}"));
    }

    put(r, JR("public"));
}


/* --- the table ----------------------------------------------------------------- */

/* per rule and version: bit 0 an allowed case, bit 1 a refused one */
typedef struct {
    const char  *rule;
    unsigned     seen[MAXV + 1];
} coverage_t;


static void
test_table(void **state)
{
    static coverage_t        cov[NCASES];
    const auth_case_t       *c;
    const mx_room_version_t *rv;
    mx_pool_t               *pool;
    room_t                   r;
    mx_auth_event_t         *ev;
    const char              *why;
    size_t                   i, k, ncov, runs, pairs, failures;
    int                      v, s, rc;

    (void) state;

    ncov = 0;
    runs = 0;
    failures = 0;

    for (i = 0; i < NCASES; i++) {
        c = &cases[i];

        for (k = 0; k < ncov && strcmp(cov[k].rule, c->rule) != 0; k++) {
            /* void */
        }

        if (k == ncov) {
            cov[ncov++].rule = c->rule;
        }

        for (v = c->min; v <= c->max; v++) {
            char  id[16];

            snprintf(id, sizeof(id), "%d", v);
            rv = mx_room_version(id, strlen(id));
            assert_non_null(rv);

            pool = mx_pool_create(0);
            assert_non_null(pool);
            room_base(&r, pool, rv, c->flags);

            for (s = 0; s < 4 && c->state[s]; s++) {
                put(&r, c->state[s]);
            }

            ev = mk(&r, c->event);
            why = NULL;
            rc = mx_auth_check(pool, rv, ev, r.state, &why);
            runs++;

            if ((c->expect == NULL) != (rc == MX_AUTH_ALLOW)
                || (c->expect && strcmp(c->expect, why) != 0))
            {
                printf("  row %zu (%s) v%d: expected %s, got %s\n", i,
                       c->rule, v, c->expect ? c->expect : "allowed",
                       why ? why : "allowed");
                failures++;
            }

            cov[k].seen[v] |= c->expect ? 2 : 1;
            mx_pool_destroy(pool);
        }
    }

    pairs = 0;

    for (k = 0; k < ncov; k++) {
        for (v = 1; v <= MAXV; v++) {
            pairs += (cov[k].seen[v] == 3);
        }
    }

    for (k = 0; k < ncov; k++) {
        for (v = 1; v <= MAXV; v++) {
            if (cov[k].seen[v] == 1 || cov[k].seen[v] == 2) {
                printf("  only %s: %s v%d\n",
                       cov[k].seen[v] == 1 ? "allowed" : "refused",
                       cov[k].rule, v);
            }
        }
    }

    printf("  %zu rows, %zu runs over room versions 1-12, %zu rules;"
           " %zu (rule, version) pairs with an allowed and a refused case\n",
           (size_t) NCASES, runs, ncov, pairs);

    assert_int_equal(failures, 0);
}


/* --- auth events ----------------------------------------------------------------- */

/*
 * mx_auth_check_auth_events: the rules about the auth events themselves.
 * A join of bob to a public room with the right auth events, then with
 * one missing, one from another room, one twice, one that the selection
 * would not pick, one rejected, and without the create event.
 */

static void
test_auth_events(void **state)
{
    static const char        *versions[] = { "1", "6", "10", "11", "12" };
    const mx_room_version_t  *rv;
    mx_pool_t                *pool;
    room_t                    r;
    const mx_auth_event_t    *auth[8], *pl, *jr, *create, *topic;
    mx_auth_event_t          *ev, *foreign, *rej;
    const char               *why;
    char                      tmpl[1024];
    size_t                    i, n;

    (void) state;

    for (i = 0; i < sizeof(versions) / sizeof(versions[0]); i++) {
        rv = mx_room_version(versions[i], strlen(versions[i]));
        pool = mx_pool_create(0);
        room_base(&r, pool, rv, 0);

        create = r.create;
        pl = mx_state_get(r.state, "m.room.power_levels", "");
        jr = mx_state_get(r.state, "m.room.join_rules", "");
        put(&r, STATE("m.room.topic", "", A));
        topic = mx_state_get(r.state, "m.room.topic", "");

        n = 0;
        if (!rv->room_id_from_create) {
            auth[n++] = create;
        }
        auth[n++] = pl;
        auth[n++] = jr;

        /* the event lists exactly these */
        snprintf(tmpl, sizeof(tmpl),
                 "{'type':'m.room.member','state_key':'" B "',"
                 "'sender':'" B "','content':{'membership':'join'},"
                 "'auth_events':[%s'%s','%s']}",
                 rv->room_id_from_create ? "" : "'$CREATE',",
                 pl->event_id, jr->event_id);
        ev = mk(&r, tmpl);

        assert_int_equal(mx_auth_check_auth_events(pool, rv, ev, auth, n,
                                                    create, &why),
                         MX_AUTH_ALLOW);

        /* one listed but not given */
        assert_int_equal(mx_auth_check_auth_events(pool, rv, ev, auth, n - 1,
                                                   create, &why),
                         MX_AUTH_DENY);
        assert_string_equal(why, "auth_events.missing");

        /* given but not listed */
        auth[n] = topic;
        assert_int_equal(mx_auth_check_auth_events(pool, rv, ev, auth, n + 1,
                                                   create, &why),
                         MX_AUTH_DENY);
        assert_string_equal(why, "auth_events.unlisted");

        /* the join rules of another room */
        snprintf(tmpl, sizeof(tmpl),
                 "{'type':'m.room.join_rules','state_key':'',"
                 "'sender':'" A "','room_id':'!elsewhere:a.test',"
                 "'event_id':'%s','content':{'join_rule':'public'}}",
                 jr->event_id);
        foreign = mk(&r, tmpl);
        auth[n - 1] = foreign;
        assert_int_equal(mx_auth_check_auth_events(pool, rv, ev, auth, n,
                                                   create, &why),
                         MX_AUTH_DENY);
        assert_string_equal(why, "auth_events.wrong_room");

        /* rejected */
        rej = mk(&r, JR("public"));
        rej->event_id = jr->event_id;
        rej->rejected = 1;
        auth[n - 1] = rej;
        assert_int_equal(mx_auth_check_auth_events(pool, rv, ev, auth, n,
                                                   create, &why),
                         MX_AUTH_DENY);
        assert_string_equal(why, "auth_events.rejected");

        /* twice the same key */
        rej->rejected = 0;
        rej->event_id = "$dup:a.test";
        auth[n - 1] = jr;
        auth[n] = rej;
        snprintf(tmpl, sizeof(tmpl),
                 "{'type':'m.room.member','state_key':'" B "',"
                 "'sender':'" B "','content':{'membership':'join'},"
                 "'auth_events':[%s'%s','%s','$dup:a.test']}",
                 rv->room_id_from_create ? "" : "'$CREATE',",
                 pl->event_id, jr->event_id);
        ev = mk(&r, tmpl);
        assert_int_equal(mx_auth_check_auth_events(pool, rv, ev, auth, n + 1,
                                                   create, &why),
                         MX_AUTH_DENY);
        assert_string_equal(why, "auth_events.duplicate");

        /* a topic is never an auth event */
        snprintf(tmpl, sizeof(tmpl),
                 "{'type':'m.room.member','state_key':'" B "',"
                 "'sender':'" B "','content':{'membership':'join'},"
                 "'auth_events':[%s'%s','%s','%s']}",
                 rv->room_id_from_create ? "" : "'$CREATE',",
                 pl->event_id, jr->event_id, topic->event_id);
        ev = mk(&r, tmpl);
        auth[n] = topic;
        assert_int_equal(mx_auth_check_auth_events(pool, rv, ev, auth, n + 1,
                                                   create, &why),
                         MX_AUTH_DENY);
        assert_string_equal(why, "auth_events.unexpected");

        /* the create event: required before v12, forbidden in v12 */
        snprintf(tmpl, sizeof(tmpl),
                 "{'type':'m.room.member','state_key':'" B "',"
                 "'sender':'" B "','content':{'membership':'join'},"
                 "'auth_events':[%s'%s','%s']}",
                 rv->room_id_from_create ? "'$CREATE'," : "",
                 pl->event_id, jr->event_id);
        ev = mk(&r, tmpl);
        auth[0] = pl;
        auth[1] = jr;
        auth[2] = create;

        if (rv->room_id_from_create) {
            assert_int_equal(mx_auth_check_auth_events(pool, rv, ev, auth, 3,
                                                       create, &why),
                             MX_AUTH_DENY);
            assert_string_equal(why, "auth_events.unexpected");

            /* and without it the room ID must still name one */
            ev = mk(&r, "{'type':'m.room.message','sender':'" A "',"
                        "'content':{}}");
            assert_int_equal(mx_auth_check_auth_events(pool, rv, ev, NULL, 0,
                                                       NULL, &why),
                             MX_AUTH_DENY);
            assert_string_equal(why, "room_id.no_create");

        } else {
            assert_int_equal(mx_auth_check_auth_events(pool, rv, ev, auth, 2,
                                                       NULL, &why),
                             MX_AUTH_DENY);
            assert_string_equal(why, "auth_events.no_create");
        }

        mx_pool_destroy(pool);
    }
}


/* --- third-party invites ------------------------------------------------------- */

/*
 * An identity server key signs {mxid, token}; the room holds an
 * m.room.third_party_invite with that public key, sent by alice.  Alice's
 * invite carrying the signed object is allowed; bob's (who did not send
 * the invite event), one whose mxid differs, one with a forged signature
 * and one for a banned user are refused.
 */

static void
test_third_party_invite(void **state)
{
    const mx_room_version_t  *rv;
    mx_signing_key_t          key, other;
    unsigned char             seed[32];
    mx_pool_t                *pool;
    room_t                    r;
    mx_json_t                *signed_, *bad;
    mx_auth_event_t          *ev;
    char                      tmpl[2048], *sj, *bj;
    const char               *why, *ids[] = { "1", "5", "6", "10", "12" };
    size_t                    i, len;

    (void) state;

    assert_int_equal(mx_sign_init(), 0);
    memset(seed, 7, sizeof(seed));
    assert_int_equal(mx_key_from_seed(&key, "0", seed), 0);
    memset(seed, 9, sizeof(seed));
    assert_int_equal(mx_key_from_seed(&other, "0", seed), 0);

    for (i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
        rv = mx_room_version(ids[i], strlen(ids[i]));
        pool = mx_pool_create(0);
        room_base(&r, pool, rv, 0);

        signed_ = mx_json_object(pool);
        mx_json_set_str(pool, signed_, "mxid", B);
        mx_json_set_str(pool, signed_, "token", "tok");
        bad = mx_json_clone(pool, signed_);
        assert_int_equal(mx_sign_json(pool, signed_, "id.test", &key,
                                      MX_JSON_STRICT), 0);
        assert_int_equal(mx_sign_json(pool, bad, "id.test", &other,
                                      MX_JSON_STRICT), 0);
        sj = mx_json_encode(pool, signed_, 0, &len);
        bj = mx_json_encode(pool, bad, 0, &len);

        snprintf(tmpl, sizeof(tmpl),
                 "{'type':'m.room.third_party_invite','state_key':'tok',"
                 "'sender':'" A "','content':{'display_name':'b',"
                 "'public_keys':[{'public_key':'%s'}]}}", key.pk_b64);
        put(&r, tmpl);

#define TPI(snd, mxid_signed)                                                \
        snprintf(tmpl, sizeof(tmpl),                                         \
                 "{'type':'m.room.member','state_key':'" B "',"              \
                 "'sender':'" snd "','content':{'membership':'invite',"      \
                 "'third_party_invite':{'display_name':'b','signed':%s}}}",  \
                 mxid_signed)

        TPI(A, sj);
        ev = mk(&r, tmpl);
        assert_int_equal(mx_auth_check(pool, rv, ev, r.state, &why),
                         MX_AUTH_ALLOW);

        TPI(A, bj);
        ev = mk(&r, tmpl);
        assert_int_equal(mx_auth_check(pool, rv, ev, r.state, &why),
                         MX_AUTH_DENY);
        assert_string_equal(why, "invite.3pid_signature");

        put(&r, MEM(B, B, "join"));
        TPI(B, sj);
        ev = mk(&r, tmpl);
        assert_int_equal(mx_auth_check(pool, rv, ev, r.state, &why),
                         MX_AUTH_DENY);
        assert_string_equal(why, "invite.3pid_sender");

        TPI(A, "{'mxid':'" C "','token':'tok'}");
        ev = mk(&r, tmpl);
        assert_int_equal(mx_auth_check(pool, rv, ev, r.state, &why),
                         MX_AUTH_DENY);
        assert_string_equal(why, "invite.3pid_mxid");

        TPI(A, "{'mxid':'" B "','token':'nope'}");
        ev = mk(&r, tmpl);
        assert_int_equal(mx_auth_check(pool, rv, ev, r.state, &why),
                         MX_AUTH_DENY);
        assert_string_equal(why, "invite.3pid_no_invite_event");

        TPI(A, "{'token':'tok'}");
        ev = mk(&r, tmpl);
        assert_int_equal(mx_auth_check(pool, rv, ev, r.state, &why),
                         MX_AUTH_DENY);
        assert_string_equal(why, "invite.3pid_signed_fields");

        TPI(A, "7");
        ev = mk(&r, tmpl);
        assert_int_equal(mx_auth_check(pool, rv, ev, r.state, &why),
                         MX_AUTH_DENY);
        assert_string_equal(why, "invite.3pid_no_signed");

        put(&r, MEM(B, A, "ban"));
        TPI(A, sj);
        ev = mk(&r, tmpl);
        assert_int_equal(mx_auth_check(pool, rv, ev, r.state, &why),
                         MX_AUTH_DENY);
        assert_string_equal(why, "invite.3pid_target_banned");

#undef TPI

        mx_pool_destroy(pool);
    }
}


/* --- auth events selection ------------------------------------------------------- */

static void
test_selection(void **state)
{
    const mx_room_version_t  *rv;
    mx_auth_key_t             keys[MX_AUTH_KEYS_MAX];
    const mx_auth_event_t    *sel[MX_AUTH_KEYS_MAX];
    mx_pool_t                *pool;
    room_t                    r;
    mx_auth_event_t          *ev;
    size_t                    n;

    (void) state;

    pool = mx_pool_create(0);

    /* v10: a message names create, power levels, the sender's membership */
    rv = mx_room_version("10", 2);
    room_base(&r, pool, rv, 0);
    ev = mk(&r, MSG(A));
    n = mx_auth_keys(rv, ev, keys);
    assert_int_equal(n, 3);
    assert_string_equal(keys[0].type, "m.room.create");
    assert_string_equal(keys[1].type, "m.room.power_levels");
    assert_string_equal(keys[2].state_key, A);
    assert_int_equal(mx_auth_select(rv, ev, r.state, sel), 3);

    /* an invite through a third-party invite, restricted join authoriser */
    ev = mk(&r, "{'type':'m.room.member','state_key':'" B "','sender':'" A "',"
                "'content':{'membership':'invite','third_party_invite':"
                "{'signed':{'mxid':'" B "','token':'T'}}}}");
    n = mx_auth_keys(rv, ev, keys);
    assert_int_equal(n, 6);
    assert_string_equal(keys[3].state_key, B);
    assert_string_equal(keys[4].type, "m.room.join_rules");
    assert_string_equal(keys[5].type, "m.room.third_party_invite");
    assert_string_equal(keys[5].state_key, "T");
    /* bob's membership, the invite event: not in the room */
    assert_int_equal(mx_auth_select(rv, ev, r.state, sel), 4);

    ev = mk(&r, "{'type':'m.room.member','state_key':'" B "','sender':'" B "',"
                "'content':{'membership':'join',"
                "'join_authorised_via_users_server':'" C "'}}");
    n = mx_auth_keys(rv, ev, keys);
    assert_int_equal(n, 5);
    assert_string_equal(keys[4].state_key, C);

    /* not before v8 */
    rv = mx_room_version("7", 1);
    assert_int_equal(mx_auth_keys(rv, ev, keys), 4);

    /* v12: never the create event */
    rv = mx_room_version("12", 2);
    room_base(&r, pool, rv, 0);
    ev = mk(&r, MSG(A));
    n = mx_auth_keys(rv, ev, keys);
    assert_int_equal(n, 2);
    assert_string_equal(keys[0].type, "m.room.power_levels");
    assert_int_equal(mx_auth_select(rv, ev, r.state, sel), 2);

    /* the create event itself has none */
    assert_int_equal(mx_auth_keys(rv, r.create, keys), 0);

    mx_pool_destroy(pool);
}


/* --- power level values ------------------------------------------------------------ */

/*
 * ../shared/spec/vectors/power_levels_legacy.json: strings in the
 * versions it names (and not after), floats in v1-v5 (and not after).
 */

static void
test_legacy_vectors(void **state)
{
    mx_pool_t                *pool;
    mx_json_t                *doc, *sect, *arr, *vers, *c, *in, *exp;
    const mx_room_version_t  *rv;
    mx_json_error_t           err;
    const char               *text;
    char                      id[16];
    int64_t                   out;
    size_t                    i, k, checks;
    int                       v, applies, rc;

    (void) state;

    if (!mx_test_spec_has("vectors/power_levels_legacy.json",
                          "power level vectors"))
    {
        skip();
    }

    pool = mx_pool_create(0);
    doc = mx_test_spec_json(pool, "vectors/power_levels_legacy.json");
    assert_non_null(doc);
    checks = 0;

    for (k = 0; k < 2; k++) {
        sect = mx_json_get(doc, k == 0 ? "stringy_values" : "floaty_values");
        vers = mx_json_get_arr(sect, "applies_to_room_versions");
        arr = mx_json_get_arr(sect, "cases");
        assert_non_null(vers);
        assert_non_null(arr);

        for (v = 1; v <= MAXV; v++) {
            snprintf(id, sizeof(id), "%d", v);
            rv = mx_room_version(id, strlen(id));
            applies = 0;

            for (i = 0; i < vers->u.a.n; i++) {
                applies |= strcmp(vers->u.a.v[i]->u.s.p, id) == 0;
            }

            for (i = 0; i < arr->u.a.n; i++) {
                c = arr->u.a.v[i];
                exp = mx_json_get(c, "expected");

                if (k == 0) {
                    in = mx_json_get(c, "input");

                } else {
                    /* floats come as JSON text; Infinity/NaN are not JSON */
                    text = mx_json_get_str(c, "input_text", NULL);
                    in = mx_json_parse(pool, text, strlen(text), &err);
                }

                rc = in ? mx_auth_pl_value(rv, in, &out) : -1;
                checks++;

                if (applies && exp->type == MX_JSON_INT) {
                    assert_int_equal(rc, 0);
                    assert_int_equal(out, exp->u.i);

                } else {
                    assert_int_equal(rc, -1);
                }
            }
        }
    }

    printf("  %zu value checks over room versions 1-12\n", checks);

    /* beyond the vectors: what is not a power level anywhere */
    rv = mx_room_version("1", 1);
    {
        const char  *bad[] = { "\"\"", "\" \"", "\"+\"", "\"1 2\"",
                               "\"++1\"", "\"0x10\"", "\"1.0\"", "true",
                               "null", "[]", "\"99999999999999999999\"",
                               "1e300", NULL };

        for (i = 0; bad[i]; i++) {
            in = mx_json_parse(pool, bad[i], strlen(bad[i]), &err);
            assert_non_null(in);
            assert_int_equal(mx_auth_pl_value(rv, in, &out), -1);
        }
    }

    mx_pool_destroy(pool);
}


/* --- the event view -------------------------------------------------------------- */

static void
test_event_view(void **state)
{
    static const struct {
        const char  *json;
        int          ok;
    } cases[] = {
        { "{\"event_id\":\"$a\",\"type\":\"m.room.message\","
          "\"sender\":\"@a:b\"}", 1 },
        { "{\"type\":\"m.room.message\",\"sender\":\"@a:b\"}", 0 },
        { "{\"event_id\":\"$a\",\"sender\":\"@a:b\"}", 0 },
        { "{\"event_id\":\"$a\",\"type\":\"m.room.message\"}", 0 },
        { "{\"event_id\":\"$a\",\"type\":\"m.room.power_levels\\u0000x\","
          "\"sender\":\"@a:b\"}", 0 },
        { "{\"event_id\":\"$a\",\"type\":\"t\",\"sender\":\"@a:b\","
          "\"state_key\":5}", 0 },
        { "{\"event_id\":\"$a\",\"type\":\"t\",\"sender\":\"@a:b\","
          "\"content\":[]}", 0 },
        { "{\"event_id\":\"$a\",\"type\":\"t\",\"sender\":\"@a:b\","
          "\"auth_events\":[5]}", 0 },
        { "{\"event_id\":\"$a\",\"type\":\"t\",\"sender\":\"@a:b\","
          "\"prev_events\":{}}", 0 },
        { "{\"event_id\":\"$a\",\"type\":\"t\",\"sender\":\"@a:b\","
          "\"room_id\":1}", 0 },
        { "[]", 0 },
    };
    mx_pool_t         *pool;
    mx_json_t         *v;
    mx_json_error_t    err;
    mx_auth_event_t   *ev;
    const char        *why, *v1;
    size_t             i;

    (void) state;

    pool = mx_pool_create(0);

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        v = mx_json_parse(pool, cases[i].json, strlen(cases[i].json), &err);
        assert_non_null(v);
        why = NULL;
        ev = mx_auth_event_from_json(pool, v, NULL, &why);

        if (cases[i].ok) {
            assert_non_null(ev);
        } else {
            assert_null(ev);
            assert_non_null(why);
        }
    }

    /* v1 and v2: [id, hashes] pairs; redacts at the top; content.redacts
       from v11; an event ID given by the caller wins */
    v1 = "{\"event_id\":\"$r:a\",\"type\":\"m.room.redaction\","
         "\"sender\":\"@a:a\",\"redacts\":\"$x:a\",\"depth\":7,"
         "\"origin_server_ts\":99,"
         "\"prev_events\":[[\"$p:a\",{\"sha256\":\"x\"}]],"
         "\"auth_events\":[[\"$c:a\",{}],[\"$j:a\",{}]],\"content\":{}}";
    v = mx_json_parse(pool, v1, strlen(v1), &err);
    ev = mx_auth_event_from_json(pool, v, NULL, &why);
    assert_non_null(ev);
    assert_int_equal(ev->n_prev, 1);
    assert_string_equal(ev->prev_events[0], "$p:a");
    assert_int_equal(ev->n_auth, 2);
    assert_string_equal(ev->auth_events[1], "$j:a");
    assert_string_equal(ev->redacts, "$x:a");
    assert_int_equal(ev->depth, 7);
    assert_int_equal(ev->origin_server_ts, 99);
    assert_null(ev->state_key);
    assert_null(ev->room_id);

    v1 = "{\"type\":\"m.room.redaction\",\"sender\":\"@a:a\","
         "\"content\":{\"redacts\":\"$y\"},\"prev_events\":[\"$p\"]}";
    v = mx_json_parse(pool, v1, strlen(v1), &err);
    ev = mx_auth_event_from_json(pool, v, "$computed", &why);
    assert_non_null(ev);
    assert_string_equal(ev->event_id, "$computed");
    assert_string_equal(ev->redacts, "$y");

    /* user IDs as the power levels rule checks them */
    assert_true(mx_user_id_historical_valid("@a:b.c", 6));
    assert_true(mx_user_id_historical_valid("@A!~:b.c:8448", 13));
    assert_false(mx_user_id_historical_valid("@:b.c", 5));
    assert_false(mx_user_id_historical_valid("a:b.c", 5));
    assert_false(mx_user_id_historical_valid("@a b:c", 6));
    assert_false(mx_user_id_historical_valid("@ab", 3));
    assert_false(mx_user_id_historical_valid("@a:", 3));

    /* every reason has a sentence */
    assert_string_equal(mx_auth_reason_text(NULL), "allowed");
    assert_string_equal(mx_auth_reason_text("join.banned"),
                        "the joining user is banned");

    mx_pool_destroy(pool);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_auth_events),
        cmocka_unit_test(test_third_party_invite),
        cmocka_unit_test(test_selection),
        cmocka_unit_test(test_legacy_vectors),
        cmocka_unit_test(test_event_view),
    };

    return cmocka_run_group_tests_name("auth", tests, NULL, NULL);
}
