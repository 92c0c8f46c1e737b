#!/usr/bin/env bash
# Checks server.mjs by hand with curl and jq, the way README.md describes:
# grant, paging, refresh and rotation, reuse of a rotated refresh token,
# revocation, client authentication methods, expiry. Prints one line per
# check and never a token. Usage: bash tests/oidc/check.sh
set -euo pipefail
cd "$(dirname "$0")"

out=$(mktemp)
node server.mjs --exit-on-stdin-close >"$out" 2>/dev/null < <(sleep 120) &
server=$!
trap 'kill "$server" 2>/dev/null; rm -f "$out"' EXIT
for _ in $(seq 50); do [ -s "$out" ] && break; sleep 0.1; done
B=$(jq -r .issuer "$out")
S=rxsync-test-secret
passes=0
failures=0

check() { # name expected actual
  if [ "$2" = "$3" ]; then echo "ok   $1"; passes=$((passes + 1)); else echo "FAIL $1: expected [$2], got [$3]"; failures=$((failures + 1)); fi
}
grant() { curl -s -X POST "$B/test/grant" -H 'content-type: application/json' -d "$1"; }
fhir() { # token patient [query]
  curl -s -o /dev/null -w '%{http_code}' "$B/fhir/MedicationRequest?patient=$2${3:-}" -H "Authorization: Bearer $1"
}
refresh_basic() { curl -s -u "$1:$S" "$B/token" -d grant_type=refresh_token --data-urlencode "refresh_token=$2"; }
refresh_post() { curl -s "$B/token" -d grant_type=refresh_token -d "client_id=$1" -d "client_secret=$S" --data-urlencode "refresh_token=$2"; }

g=$(grant '{"client_id":"rxsync","patient":"ehr-1"}')
AT=$(jq -r .access_token <<<"$g"); RT=$(jq -r .refresh_token <<<"$g")
check "grant: token response fields" "Bearer 3600 ehr-1 openid offline_access patient/MedicationRequest.rs" \
  "$(jq -r '"\(.token_type) \(.expires_in) \(.patient) \(.scope)"' <<<"$g")"
p1=$(curl -s -D - "$B/fhir/MedicationRequest?patient=ehr-1" -H "Authorization: Bearer $AT")
check "page 1: fhir+json" "1" "$(grep -ci '^content-type: application/fhir+json' <<<"$p1")"
body1=$(sed '1,/^\r$/d' <<<"$p1")
check "page 1: 2 of 3, absolute next" "2 3 $B/fhir/MedicationRequest?patient=ehr-1&_page=2" \
  "$(jq -r '"\(.entry|length) \(.total) \(.link[]|select(.relation=="next").url)"' <<<"$body1")"
p2=$(curl -s "$(jq -r '.link[]|select(.relation=="next").url' <<<"$body1")" -H "Authorization: Bearer $AT")
check "page 2: last, no next" "1 0" "$(jq -r '"\(.entry|length) \([.link[]|select(.relation=="next")]|length)"' <<<"$p2")"
check "NDCs over both pages" "0003-5194-10 0006-0106-54 0054-4299-25" \
  "$( (jq -r '.entry[].resource.medicationCodeableConcept.coding[0].code' <<<"$body1"; jq -r '.entry[].resource.medicationCodeableConcept.coding[0].code' <<<"$p2") | xargs)"
check "wrong patient: 403" "403" "$(fhir "$AT" other)"
check "unknown token: 401" "401" "$(fhir nope ehr-1)"
check "unknown token: challenge" 'Bearer realm="rxsync-test-fhir", error="invalid_token", error_description="The access token is invalid"' \
  "$(curl -s -D - -o /dev/null "$B/fhir/MedicationRequest?patient=ehr-1" -H 'Authorization: Bearer nope' | sed -n 's/^www-authenticate: //Ip' | tr -d '\r')"
check "token in the query: 400" "400" "$(curl -s -o /dev/null -w '%{http_code}' "$B/fhir/MedicationRequest?patient=ehr-1&access_token=$AT")"
check "metadata: CapabilityStatement with the token URL" "CapabilityStatement $B/token" \
  "$(curl -s "$B/fhir/metadata" | jq -r '"\(.resourceType) \(.rest[0].security.extension[0].extension[]|select(.url=="token").valueUri)"')"
check "smart-configuration: token endpoint" "$B/token" "$(curl -s "$B/fhir/.well-known/smart-configuration" | jq -r .token_endpoint)"
check "no token: 401" "401" "$(curl -s -o /dev/null -w '%{http_code}' "$B/fhir/MedicationRequest?patient=ehr-1")"
check "MedicationStatement without its scope: 403" "403" \
  "$(curl -s -o /dev/null -w '%{http_code}' "$B/fhir/MedicationStatement?patient=ehr-1" -H "Authorization: Bearer $AT")"
gs=$(grant '{"client_id":"rxsync","patient":"ehr-1","scope":"openid offline_access patient/MedicationStatement.rs"}')
check "MedicationStatement with its scope: empty searchset" "searchset 0" \
  "$(curl -s "$B/fhir/MedicationStatement?patient=ehr-1" -H "Authorization: Bearer $(jq -r .access_token <<<"$gs")" | jq -r '"\(.type) \(.total)"')"

r1=$(refresh_basic rxsync "$RT")
RT2=$(jq -r .refresh_token <<<"$r1"); AT2=$(jq -r .access_token <<<"$r1")
check "refresh: new access and refresh token, patient, id_token" "true true ehr-1 true" \
  "$(jq -r --arg rt "$RT" --arg at "$AT" '"\(.refresh_token != $rt) \(.access_token != $at) \(.patient) \(.id_token != null)"' <<<"$r1")"
check "refresh: the old access token still works" "200" "$(fhir "$AT" ehr-1)"
check "refresh: the new access token works" "200" "$(fhir "$AT2" ehr-1)"
check "reuse of the rotated-out refresh token: invalid_grant" "invalid_grant grant request is invalid" \
  "$(refresh_basic rxsync "$RT" | jq -r '"\(.error) \(.error_description)"')"
check "after reuse: the current refresh token is dead too" "invalid_grant" "$(refresh_basic rxsync "$RT2" | jq -r .error)"
check "after reuse: every access token of the grant is dead" "401 401" "$(fhir "$AT" ehr-1) $(fhir "$AT2" ehr-1)"
check "after reuse: introspection says inactive" "false" \
  "$(curl -s -u "rxsync:$S" "$B/token/introspection" --data-urlencode "token=$RT2" | jq -r .active)"

g=$(grant '{"client_id":"rxsync","patient":"ehr-2"}')
AT=$(jq -r .access_token <<<"$g"); RT=$(jq -r .refresh_token <<<"$g")
check "revoke the refresh token: 200" "200" \
  "$(curl -s -o /dev/null -w '%{http_code}' -u "rxsync:$S" "$B/token/revocation" --data-urlencode "token=$RT" -d token_type_hint=refresh_token)"
check "after revocation: access token 401, refresh invalid_grant" "401 invalid_grant" \
  "$(fhir "$AT" ehr-2) $(refresh_basic rxsync "$RT" | jq -r .error)"
g=$(grant '{"client_id":"rxsync","patient":"ehr-3"}')
AT=$(jq -r .access_token <<<"$g"); RT=$(jq -r .refresh_token <<<"$g")
curl -s -o /dev/null -u "rxsync:$S" "$B/token/revocation" --data-urlencode "token=$AT" -d token_type_hint=access_token
check "revoking only the access token ends the refresh token too" "invalid_grant" "$(refresh_basic rxsync "$RT" | jq -r .error)"

g=$(grant '{"client_id":"rxsync-post","patient":"ehr-4","expires_in":1}')
AT=$(jq -r .access_token <<<"$g"); RT=$(jq -r .refresh_token <<<"$g")
check "expires_in 1: valid at once" "200" "$(fhir "$AT" ehr-4)"
sleep 2
check "expires_in 1: 401 two seconds later" "401" "$(fhir "$AT" ehr-4)"
check "post client refused with basic" "invalid_client" "$(refresh_basic rxsync-post "$RT" | jq -r .error)"
check "basic client refused with post" "invalid_client" "$(refresh_post rxsync "$RT" | jq -r .error)"
check "wrong secret" "invalid_client" "$(curl -s -u rxsync:wrong "$B/token" -d grant_type=refresh_token -d refresh_token=x | jq -r .error)"
r=$(refresh_post rxsync-post "$RT")
check "post client refreshes with post" "ehr-4 true" "$(jq -r '"\(.patient) \(.refresh_token != null)"' <<<"$r")"
check "a refresh token is bound to its client" "invalid_grant" "$(refresh_basic rxsync "$(jq -r .refresh_token <<<"$r")" | jq -r .error)"

g=$(grant '{"client_id":"rxsync","patient":"ehr-5"}')
r=$(refresh_basic rxsync "$(jq -r .refresh_token <<<"$g")")
check "expire-access ends both access tokens" "2" \
  "$(curl -s -X POST "$B/test/expire-access" -d '{"patient":"ehr-5"}' | jq -r .ended)"
check "expire-access: access tokens 401" "401 401" \
  "$(fhir "$(jq -r .access_token <<<"$g")" ehr-5) $(fhir "$(jq -r .access_token <<<"$r")" ehr-5)"
check "expire-access: the refresh token still refreshes" "ehr-5" \
  "$(refresh_basic rxsync "$(jq -r .refresh_token <<<"$r")" | jq -r .patient)"

stats=$(curl -s "$B/test/stats")
check "stats: refreshes counted" "4" "$(jq -r .refreshes <<<"$stats")"
check "stats: presented rotations of the successful refreshes" "0 0 0 1" \
  "$(jq -r '[.token_log[]|select(.error==null)|.presented_rotations]|map(tostring)|join(" ")' <<<"$stats")"
check "stats: secrets never in stats" "0" "$(grep -c "$S" <<<"$stats" || true)"
check "stats: hashes of issued tokens, never tokens" "true false" \
  "$(jq -r --arg h "$(printf %s "$AT" | sha256sum | cut -d' ' -f1)" --arg at "$AT" \
    '"\(.issued_token_sha256|index($h) != null) \(tostring|contains($at))"' <<<"$stats")"

echo "$passes passed, $failures failed"
[ "$failures" -eq 0 ]
