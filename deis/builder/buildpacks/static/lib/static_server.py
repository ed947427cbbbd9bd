"""The static buildpack's web server (python3 stdlib): serves /app on $PORT, never a dotfile,
never a directory listing, never a file a symlink leads to outside /app."""

import http.server
import os
import sys

ROOT = os.path.realpath(os.environ.get("STATIC_ROOT_DIR", os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))


class Handler(http.server.SimpleHTTPRequestHandler):
    server_version = "deis-static"
    sys_version = ""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, directory=ROOT, **kwargs)

    def send_head(self):
        path = self.translate_path(self.path)
        rel = os.path.relpath(path, ROOT)
        hidden = rel != "." and any(part.startswith(".") for part in rel.split(os.sep))
        real = os.path.realpath(path)
        outside = real != ROOT and not real.startswith(ROOT + os.sep)
        if hidden or outside:
            self.send_error(404, "File not found")
            return None
        return super().send_head()

    def list_directory(self, path):
        self.send_error(404, "File not found")

    def log_message(self, format, *args):
        sys.stdout.write(f"{self.address_string()} - {format % args}\n")
        sys.stdout.flush()


def main():
    port = int(os.environ.get("PORT", "5000"))
    server = http.server.ThreadingHTTPServer(("0.0.0.0", port), Handler)
    print(f"serving {ROOT} on port {port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
