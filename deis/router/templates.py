"""The nginx configuration, as Jinja2 templates.

Every value put in here has been checked first (deis.router.model.validate for what comes from
apps, Router for paths and settings), so the templates insert them as they are.
"""

from __future__ import annotations

import jinja2

MAIN = """\
# Written by deis.router, generation {{ generation }}. Do not edit: every apply rewrites it.
master_process on;
worker_processes {{ s.worker_processes }};
pid "{{ prefix }}/nginx.pid";
error_log "{{ prefix }}/logs/error.log" {{ s.error_log_level }};
{% if s.worker_shutdown_timeout %}worker_shutdown_timeout {{ s.worker_shutdown_timeout }}s;
{% endif %}

events {
    worker_connections {{ s.worker_connections }};
}

http {
    client_body_temp_path "{{ prefix }}/tmp/body";
    proxy_temp_path "{{ prefix }}/tmp/proxy";
    fastcgi_temp_path "{{ prefix }}/tmp/fastcgi";
    uwsgi_temp_path "{{ prefix }}/tmp/uwsgi";
    scgi_temp_path "{{ prefix }}/tmp/scgi";

    default_type text/plain;
    charset utf-8;
    server_tokens off;
    sendfile on;
    tcp_nodelay on;
    keepalive_timeout 65s;
    client_max_body_size {{ s.max_body_size }};
    # Any valid host name (253 characters: a 264-byte hash entry) and tens of thousands of them:
    # a bucket holds seven of the longest, and nginx finds a table with no bucket over that.
    server_names_hash_bucket_size 2048;
    server_names_hash_max_size 32768;

    # X-Request-ID: the client's when it looks like an id, a fresh one otherwise.
    map $http_x_request_id $deis_request_id {
        default $request_id;
        "~^[A-Za-z0-9._-]{1,128}$" $http_x_request_id;
    }

    # WebSockets: pass Upgrade on, and close the upstream connection after any other request.
    map $http_upgrade $deis_connection {
        default upgrade;
        "" close;
    }

    log_format deis '$remote_addr - [$time_local] "$host" "$request" $status $body_bytes_sent '
                    'rid=$deis_request_id upstream=$upstream_addr rt=$request_time urt=$upstream_response_time';
    # Buffered: one write per 64 KiB or second instead of one per request.
    access_log {% if s.access_log %}"{{ prefix }}/logs/access.log" deis buffer=64k flush=1s{% else %}off{% endif %};

    # Defaults for every app's proxying (Deis: connect 30 s, read 1300 s).
    proxy_http_version 1.1;
    proxy_connect_timeout {{ s.connect_timeout }}s;
    proxy_send_timeout {{ s.send_timeout }}s;
    proxy_read_timeout {{ s.read_timeout }}s;
    # Uploads stream to the app as they arrive (chunked ones stay chunked): no temp files, no delay.
    proxy_request_buffering off;
    # Responses stream to the client as they arrive (server-sent events, long polling, downloads).
    proxy_buffering {{ "on" if s.buffering else "off" }};
    proxy_next_upstream error timeout;
    proxy_redirect off;
    proxy_set_header Host $host;
    proxy_set_header Upgrade $http_upgrade;
    proxy_set_header Connection $deis_connection;
    proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
    proxy_set_header X-Forwarded-Proto $scheme;
    proxy_set_header X-Forwarded-Host $host;
    proxy_set_header X-Forwarded-Port $server_port;
    proxy_set_header X-Real-IP $remote_addr;
    proxy_set_header X-Request-ID $deis_request_id;
    proxy_hide_header X-Request-ID;
    add_header X-Request-ID $deis_request_id always;

    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_prefer_server_ciphers off;
    ssl_session_cache shared:deis_ssl:10m;
    ssl_session_timeout 1h;

    # Hosts no app claims.
    server {
        listen {{ http_listen }} default_server;
{% if https_listen %}
        listen {{ https_listen }} ssl default_server;
        ssl_reject_handshake on;
{% endif %}
        server_name _;
        location / {
            return 404 "404 Not Found: no app is served at this address\\n";
        }
    }

    # Which configuration is live; asked by the router itself after a reload, from this host only.
    # `allow`/`deny` would never apply: `return` runs in the rewrite phase, before the access phase;
    # the `if` runs in the rewrite phase too, first.
    geo $deis_status_client {
        default 0;
        127.0.0.1 1;
        ::1 1;
{% if probe_address != "127.0.0.1" %}
        {{ probe_address }} 1;
{% endif %}
    }
    server {
        listen {{ http_listen }};
        server_name {{ status_host }};
        location = /generation {
            if ($deis_status_client = 0) {
                return 403;
            }
            return 200 "{{ generation }}\\n";
        }
        location / {
            return 404;
        }
    }

{% for path in app_files %}
    include "{{ path }}";
{% endfor %}
}
"""

APP = """\
# App {{ r.app }}: {{ r.upstreams | length }} upstream(s), {{ r.certificates | length }} certificate(s).
{% if r.upstreams %}
upstream deis_app_{{ r.app | replace("-", "_") }} {
{% for host, port in r.upstreams %}
    server {{ "[%s]" % host if ":" in host else host }}:{{ port }};
{% endfor %}
{% for host, port in r.backups %}
    server {{ "[%s]" % host if ":" in host else host }}:{{ port }} backup;
{% endfor %}
}
{% endif %}
{% macro body() %}
    location / {
{% if r.upstreams %}
        proxy_pass http://deis_app_{{ r.app | replace("-", "_") }};
{% else %}
        return 503 "503 Service Unavailable: no web process is running for {{ r.app }}\\n";
{% endif %}
    }
{% endmacro %}

server {
    listen {{ http_listen }};
    server_name {{ r.hosts | join(" ") }};
{{ body() }}}
{% for c in tls %}

server {
    listen {{ https_listen }} ssl;
    server_name {{ c.hosts | join(" ") }};
    ssl_certificate "{{ c.cert_path }}";
    ssl_certificate_key "{{ c.key_path }}";
{{ body() }}}
{% endfor %}
"""

_env = jinja2.Environment(trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
                          undefined=jinja2.StrictUndefined, autoescape=False)
main_template = _env.from_string(MAIN)
app_template = _env.from_string(APP)
