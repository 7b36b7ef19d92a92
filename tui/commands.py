"""Command palette providers: switch persona, and the app's own actions by name."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from textual.command import DiscoveryHit, Hit, Hits, Provider

if TYPE_CHECKING:
    from tui.app import EpistemicApp


class PersonaCommands(Provider):
    """``Persona: NAME`` for every persona the configuration knows."""

    def _choices(self) -> list[tuple[str, str]]:
        app: EpistemicApp = self.app  # type: ignore[assignment]
        return app.persona_choices()

    async def discover(self) -> Hits:
        app: EpistemicApp = self.app  # type: ignore[assignment]
        for name, description in self._choices():
            yield DiscoveryHit(f"Persona: {name}", partial(app.switch_persona, name), help=description)

    async def search(self, query: str) -> Hits:
        app: EpistemicApp = self.app  # type: ignore[assignment]
        matcher = self.matcher(query)
        for name, description in self._choices():
            command = f"Persona: {name}"
            score = matcher.match(command)
            if score > 0:
                yield Hit(score, matcher.highlight(command), partial(app.switch_persona, name), help=description)
