"""HAProxy's configuration, as a Jinja2 template.

The file holds what changes rarely: settings, the listeners and a number of backend slots. Which
hosts go to which slot, the servers of each slot, certificates, maintenance and allow-lists live in
map, ACL and crt-list files next to it, which the router changes at runtime through the admin
socket (deis/router/router.py) and rewrites on disk for the next start. The servers are written
into the file too, so that a start serves the last routes at once.

Every value put in here has been checked first (deis.router.model.validate for what comes from
apps, Router for paths and settings), so the template inserts them as they are.
"""

from __future__ import annotations

import jinja2

CONFIG = """\
# Written by deis.router. Do not edit: the router rewrites it, and changes routes at runtime.
global
    pidfile "{{ root }}/haproxy.pid"
    stats socket "{{ root }}/admin.sock" mode 600 level admin expose-fd listeners
    stats timeout 30s
    # One router a port: two HAProxys never share one (reloads hand the sockets over instead).
    noreuseport
    setenv DEIS_ROUTER_CONFIG {{ config_key }}
{% if s.nbthread %}
    nbthread {{ s.nbthread }}
{% endif %}
    maxconn {{ s.maxconn }}
    hard-stop-after {{ s.hard_stop_after }}s
    ssl-default-bind-options ssl-min-ver TLSv1.2
    tune.ssl.default-dh-param 2048
{% if s.log_socket %}
    # One line a request to the logger (deis/logger/router_log.py): `deis logs` and metrics.
    log "{{ s.log_socket }}" len 4096 format raw local0 info
{% endif %}

defaults
    mode http
{% if s.log_socket %}
    log global
    option dontlognull
    log-format "{{ log_format }}"
{% endif %}
    timeout connect {{ s.connect_timeout }}s
    timeout server {{ s.read_timeout }}s
    timeout client {{ s.send_timeout }}s
    timeout tunnel {{ s.read_timeout }}s
    timeout http-keep-alive 65s
    timeout http-request 60s
    timeout client-fin 30s
    timeout server-fin 30s
    # A request to an app goes on a connection of its own (as the nginx router did): a server
    # drained then deleted never holds an idle pooled connection.
    option http-server-close
    # A reload (rare: more backend slots, other settings) keeps idle keep-alive connections until
    # their next answer, which says `Connection: close`, so no client sees its connection cut.
    option idle-close-on-response
    # A connection refused or timed out before any byte was sent is tried again on another process.
    retries 3
    option redispatch 1
    retry-on conn-failure
    default-server {{ server_options }}

frontend deis
    bind {{ http_bind }}
{% if https_bind %}
    bind {{ https_bind }} ssl crt-list "{{ root }}/certs.list" strict-sni alpn http/1.1
{% endif %}
    # X-Request-ID: the client's when it looks like an id, a fresh one otherwise.
    unique-id-format %[uuid(4),regsub(-,,g)]
    http-request set-var(txn.rid) req.fhdr(x-request-id) if { req.fhdr(x-request-id) -m reg ^[A-Za-z0-9._-]{1,128}$ }
    http-request set-var(txn.rid) unique-id unless { var(txn.rid) -m found }
    http-request set-header X-Request-ID %[var(txn.rid)]
    http-after-response set-header X-Request-ID %[var(txn.rid)]

    # The client's address: the peer's, or the last one in X-Forwarded-For when the peer is a
    # proxy the operator trusts (DEIS_ROUTER_TRUSTED_PROXIES).
    http-request set-var(txn.peer) src
    http-request set-var(txn.xff) req.fhdr(x-forwarded-for)
    http-request set-src hdr_ip(x-forwarded-for,-1) if { src -f "{{ root }}/trusted.acl" } { req.hdr_ip(x-forwarded-for,-1) -m found }
    http-request set-header X-Forwarded-For "%[var(txn.xff)], %[var(txn.peer)]" if { var(txn.xff) -m found }
    http-request set-header X-Forwarded-For "%[var(txn.peer)]" unless { var(txn.xff) -m found }
    http-request set-header X-Real-IP %[src]
    http-request set-header X-Forwarded-Proto https if { ssl_fc }
    http-request set-header X-Forwarded-Proto http unless { ssl_fc }
    http-request set-header X-Forwarded-Host %[req.hdr(host)]
    http-request set-header X-Forwarded-Port %[dst_port]
{% if s.max_body_bytes %}
    http-request deny deny_status 413 if { req.hdr_val(content-length) gt {{ s.max_body_bytes }} }
{% endif %}

    # Host -> app slot: exact names first, then wildcards (longest first).
    http-request set-var(txn.host) req.hdr(host),field(1,:),lower
    http-request set-var(txn.slot) var(txn.host),map_str("{{ root }}/hosts.map")
    http-request set-var(txn.slot) var(txn.host),map_end("{{ root }}/wildcards.map") unless { var(txn.slot) -m found }
    http-request set-var(txn.app) var(txn.slot),map_str("{{ root }}/apps.map") if { var(txn.slot) -m found }
    http-request return status 404 content-type "text/plain; charset=utf-8" string "404 Not Found: no app is served at this address\\n" unless { var(txn.slot) -m found }
    http-request return status 503 content-type "text/html; charset=utf-8" file "{{ root }}/maintenance.html" hdr Retry-After 60 if { var(txn.slot),map_str("{{ root }}/maintenance.map") -m found }
    use_backend %[var(txn.slot)]

{% for slot in slots %}
backend {{ slot }}
    balance roundrobin
    http-request return status 403 content-type "text/plain; charset=utf-8" string "403 Forbidden: this address may not use this app\\n" if { be_name,map_str("{{ root }}/allowlisted.map") -m found } !{ src -f "{{ root }}/allow/{{ slot }}.acl" }
    # HAProxy's own 503 (no server to take the request), never a 503 of the app's. Not an
    # `nbsrv eq 0` rule: a process finishing its last answers after a reload counts none.
    http-error status 503 content-type "text/plain; charset=utf-8" lf-string "503 Service Unavailable: no web process is running for %[var(txn.app)]\\n"
{% for name, addr, backup in servers.get(slot, []) %}
    server {{ name }} {{ addr }}{{ " backup" if backup else "" }}
{% endfor %}

{% endfor %}
"""

MAINTENANCE_PAGE = """\
<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Down for maintenance</title></head>
<body><h1>Down for maintenance</h1><p>This app is down for maintenance. Please check back soon.</p></body></html>
"""

_env = jinja2.Environment(trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
                          undefined=jinja2.StrictUndefined, autoescape=False)
config_template = _env.from_string(CONFIG)
