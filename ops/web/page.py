"""What a browser reads from the server besides the API: the web page at `/` (static/) and the
interactive reference at `/docs` (Swagger UI 5, whose files come from the fastapi-offline
package). Both are files installed with the package, never from the internet: a machine offline
gets the same page and the same reference. No /redoc: ReDoc loads its logo from a CDN."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles

STATIC = Path(__file__).with_name("static")
DOCS_ASSETS = "/docs-assets"  # where Swagger UI's own files are served
# The page runs only its own files: no inline script or style, nothing from another site, no
# framing. Pictures may be blob: URLs (fetched with the token) and its favicon a data: URL.
# (/docs is left without: Swagger UI starts from an inline script.)
PAGE_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


def docs_assets_folder() -> Path:
    import fastapi_offline

    return Path(fastapi_offline.__file__).with_name("static")


def mount(app: FastAPI) -> None:
    """`/` (the page), `/static/*` (its files), `/docs` and its files on `app`, which must be
    made with docs_url=None and redoc_url=None (FastAPI's own load theirs from a CDN)."""
    app.mount("/static", StaticFiles(directory=STATIC, check_dir=False), name="static")
    app.mount(DOCS_ASSETS, StaticFiles(directory=docs_assets_folder()), name="docs-assets")
    title = f"{app.title}: API reference"
    openapi_url = app.openapi_url
    if openapi_url is None:
        raise ValueError("the app has no OpenAPI document (openapi_url=None) for /docs to show")

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Content-Security-Policy": PAGE_POLICY})

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=title,
            swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_ASSETS}/favicon.png",
        )
