"""Reading console pages in tests as a browser would, without one: the elements by id and
class, their text, and the forms' hidden fields; and signing in through the sign-in form.

Built on the standard library's HTML parser, so what a test finds is what the markup holds,
not what a lenient parser guessed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import httpx
    from fastapi.testclient import TestClient

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
        "track", "wbr"}
CONSOLE_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
               "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")


@dataclass
class Element:
    tag: str
    attrs: dict[str, str]
    children: list[Element | str] = field(default_factory=list)

    @property
    def text(self) -> str:
        """The element's text, blanks collapsed."""
        parts: list[str] = []
        for child in self.children:
            parts.append(child if isinstance(child, str) else child.text)
        return " ".join(" ".join(parts).split())

    @property
    def classes(self) -> set[str]:
        return set(self.attrs.get("class", "").split())

    def iter(self) -> list[Element]:
        found = [self]
        for child in self.children:
            if isinstance(child, Element):
                found.extend(child.iter())
        return found

    def by_id(self, element_id: str) -> Element | None:
        return next((e for e in self.iter() if e.attrs.get("id") == element_id), None)

    def get(self, element_id: str) -> Element:
        found = self.by_id(element_id)
        assert found is not None, f"no element #{element_id}"
        return found

    def by_class(self, name: str) -> list[Element]:
        return [e for e in self.iter() if name in e.classes]

    def by_tag(self, tag: str) -> list[Element]:
        return [e for e in self.iter() if e.tag == tag]

    def field(self, name: str) -> str:
        """The value of the form field called ``name`` inside this element."""
        for element in self.iter():
            if element.tag in ("input", "textarea") and element.attrs.get("name") == name:
                return element.attrs.get("value", element.text)
        raise AssertionError(f"no field {name!r}")


class _Builder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Element("#document", {})
        self._open = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, {name: value or "" for name, value in attrs})
        self._open[-1].children.append(element)
        if tag not in VOID:
            self._open.append(element)

    def handle_endtag(self, tag: str) -> None:
        for depth in range(len(self._open) - 1, 0, -1):
            if self._open[depth].tag == tag:
                del self._open[depth:]
                return

    def handle_data(self, data: str) -> None:
        self._open[-1].children.append(data)


def page(response: httpx.Response) -> Element:
    """Parse a console answer (it must be HTML)."""
    assert response.headers["content-type"].startswith("text/html"), response.text[:500]
    builder = _Builder()
    builder.feed(response.text)
    builder.close()
    return builder.root


def sign_in(client: TestClient, token: str, *, next_path: str = "/ui/") -> httpx.Response:
    """Sign in through the sign-in form as a person would; return the form's answer."""
    form = page(client.get("/ui/sign-in", params={"next": next_path})).get("sign-in-form")
    answer: httpx.Response = client.post(
        "/ui/sign-in", data={"csrf_token": form.field("csrf_token"), "token": token,
                             "next": form.field("next")},
        follow_redirects=False)
    return answer


def signed_in(client: TestClient, token: str) -> TestClient:
    """Sign ``client`` in with ``token`` (it keeps the session cookie) and return it."""
    answer = sign_in(client, token)
    assert answer.status_code == 303, answer.text
    return client


LOCAL = "http://127.0.0.1"  # plain http on this machine: the demo's and the tests' console


def console_client(app: object, *, base_url: str = LOCAL) -> TestClient:
    """A client of ``app`` reaching it as a browser on this machine would (enter it with
    ``with``, which runs the app's lifespan: its workers)."""
    from fastapi.testclient import TestClient

    return TestClient(app, base_url=base_url)  # type: ignore[arg-type]
