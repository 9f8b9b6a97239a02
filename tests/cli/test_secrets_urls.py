"""Issue 22 item 16: no secret of a URL reaches a printed line. A Redis password holding '/', '#',
'?', '@' or '%' is never printed, not even the piece a URL parser takes for a port; a
`faces models fetch --url` mirror's token or password is never printed; and a mirror URL with a
query gets each file name appended to its path, not after the query."""

from __future__ import annotations

import http.server
import re
import threading
from urllib.parse import quote

import pytest

from faces.ops import exits
from tests.pipeline import faces_cli
from tests.ports import closed_port

# Each piece long enough to be found if printed, whatever a parser cut the password into.
PIECES = ("Xk9vTq", "Qz7mWp", "Wm3nRb")
TOKEN = "tok3nS3cr3tValue"


def password_with(separator: str) -> str:
    return separator.join(PIECES)


def assert_no_piece(text: str, secret: str) -> None:
    leaked = [piece for piece in re.split(r"[/#?@%]", secret) if piece and piece in text]
    assert not leaked, f"printed {leaked}: {text}"


@pytest.mark.parametrize("separator", ["/", "#", "?"])
def test_a_redis_password_with_an_unencoded_separator_is_refused_without_printing_it(separator):
    """A password holding an unencoded '/', '#' or '?' (redis-py would read the rest as host and
    port) is bad usage: exit 2, one line that names the fix (percent-encode) and shows the URL
    with *** for the password; no piece of the password anywhere in the output."""
    password = password_with(separator)
    done = faces_cli(
        "status", env={"FACES_REDIS_URL": f"redis://app:{password}@127.0.0.1:{closed_port()}/0"}, timeout=60
    )
    assert done.returncode == exits.USAGE, done.stderr
    assert "redis://app:***@127.0.0.1:" in done.stderr and "percent-encoded" in done.stderr
    assert_no_piece(done.stdout + done.stderr, password)


@pytest.mark.parametrize("separator", ["@", "%", "/", "#", "?"])
def test_a_valid_url_whose_password_holds_special_characters_is_shown_masked(separator):
    """A well-formed URL ('@' and '%' as they are, '/', '#', '?' percent-encoded) that reaches no
    server: the one error line shows the URL with *** for the password, and no piece of it."""
    password = password_with(separator)
    written = password if separator in "@%" else quote(password, safe="")
    done = faces_cli(
        "status", env={"FACES_REDIS_URL": f"redis://app:{written}@127.0.0.1:{closed_port()}/0"}, timeout=60
    )
    assert done.returncode == exits.FAILED, done.stderr
    assert done.stderr.startswith("error: cannot reach Redis at redis://app:***@127.0.0.1:")
    assert_no_piece(done.stdout + done.stderr, password)


class _Recording(http.server.BaseHTTPRequestHandler):
    """Answers every GET with bytes that are not the pinned weights; records each request path."""

    def do_GET(self):
        self.server.paths.append(self.path)
        body = b"not the real weights"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def mirror():
    """A real HTTP server on 127.0.0.1: (base URL, the request paths it received)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recording)
    server.paths = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", server.paths
    server.shutdown()
    server.server_close()


def fetch(tmp_path, url: str):
    env = {"DEEPFACE_HOME": str(tmp_path / "home"), "XDG_CACHE_HOME": str(tmp_path / "cache"), "FACES_WEIGHTS_URL": ""}
    return faces_cli("models", "fetch", "--mirror-only", "--url", url, env=env, timeout=120)


def test_a_mirror_url_with_a_token_gets_the_file_name_in_its_path_and_never_prints_the_token(tmp_path, mirror):
    """`--url BASE?token=T`: the file is asked for at BASE/age_model_weights.h5?token=T (the name
    appended to the path, the query kept), and the failure line (a wrong sha256) names the
    URL with token=*** only."""
    base, paths = mirror
    done = fetch(tmp_path, f"{base}/weights?token={TOKEN}")
    assert paths == [f"/weights/age_model_weights.h5?token={TOKEN}"]
    assert done.returncode == exits.FAILED
    assert f"{base}/weights/age_model_weights.h5?token=***: sha256" in done.stderr
    assert TOKEN not in done.stdout + done.stderr


def test_an_unreachable_mirror_with_a_password_and_a_token_is_named_without_them(tmp_path):
    """A mirror that cannot be reached: the offline line names it with the user info's password
    and every query value masked."""
    password = password_with("@")
    url = f"http://mirror-user:{password}@127.0.0.1:{closed_port()}/w?sig={TOKEN}&expires=99"
    done = fetch(tmp_path, url)
    assert done.returncode == exits.FAILED
    assert done.stderr.startswith("error: offline:")
    assert "http://mirror-user:***@127.0.0.1:" in done.stderr and "sig=***&expires=***" in done.stderr
    assert TOKEN not in done.stderr
    assert_no_piece(done.stdout + done.stderr, password)
