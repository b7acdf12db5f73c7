"""Child mode with no signal: the server's half of the offline child screens (pwa/static/seen-child-offline.js).

The offline screens send what the child said as drafts (/api/offline/drafts, kinds "child_statement" and
"safeguarding_flag", stored by storage/child_voice.py's functions under the keys made when child mode opened).
Here is what the child's phone needs beside them: what it keeps to check the worker's PIN with no signal, and
the worker taking the phone back once the signal returns (`take_back`, as on the screen: PIN or password, every
try audited).
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from nicegui import app
from pydantic import BaseModel, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from pwa import state
from pwa.auth import CHILD_MODE, signed_in_worker
from pwa.child_texts import catalogues
from pwa.child_voice_section import FACES, FEELING_QUESTIONS, HOUSES, TELL
from pwa.security import same_origin
from storage.child_voice import FEELING_TOPICS, take_back

NO_STORE = {"Cache-Control": "no-store"}
# The offline page has no icon font: each of the screen's icons as a picture character (aria-hidden beside words).
EMOJI = {"sentiment_very_dissatisfied": "😢", "sentiment_dissatisfied": "🙁", "sentiment_neutral": "😐",
         "sentiment_satisfied": "🙂", "sentiment_very_satisfied": "😄", "home": "🏠", "cloud": "☁️", "star": "⭐"}


def offline_child_json() -> str:
    """The offline child screens' steps and words (#seen-child-texts in the offline page), from the screen's own
    definitions and the .po files: JSON safe inside a <script> element."""
    steps = {"faces": [[EMOJI[icon], words] for icon, words in FACES],
             "questions": [[topic, FEELING_QUESTIONS[topic]] for topic in FEELING_TOPICS],
             "houses": [[name, EMOJI[icon], question] for name, icon, question in HOUSES],
             "tell": [list(pair) for pair in TELL]}
    return json.dumps({**catalogues(), "steps": steps}, ensure_ascii=False, sort_keys=True).replace("</", "<\\/")


def session_for_phone(mode: dict[str, Any], worker_id: str) -> str:
    """What the child's screen gives the phone to keep, sealed, for when the signal goes (JSON, safe inside a
    <script> element): the child, their language, the keys made when child mode opened and the PIN's check."""
    body = {"child_id": mode["child_id"], "language": mode["language"], "statement_key": mode["statement_key"],
            "unsafe_key": mode["unsafe_key"], "worker_id": worker_id, "pin": mode.get("pin_offline")}
    return json.dumps(body).replace("</", "<\\/")


class LeaveIn(BaseModel):
    secret: str = Field(max_length=200)


def _answer(status: int, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"message": message, **extra}, status_code=status, headers=NO_STORE)


async def leave_child_mode(request: Request) -> Response:
    """The worker takes the phone back from the offline screens once the signal is back."""
    if not same_origin(request):
        return _answer(403, "Only Seen itself can end child mode.")
    worker = await signed_in_worker()
    if worker is None:
        return _answer(401, "Sign in to take the phone back.")
    mode = dict(app.storage.user.get(CHILD_MODE) or {})
    if not mode:
        return _answer(200, "The phone is yours again.", ok=True, child_id="")
    try:
        secret = LeaveIn.model_validate_json(await request.body()).secret
    except ValidationError:
        return _answer(400, "That could not be read. Type your PIN or password again.")
    outcome = await run_in_threadpool(take_back, state.store(), worker, mode["child_id"], secret,
                                      mode.get("pin_hash", ""), int(mode.get("pin_tries", 0)),
                                      request.client.host if request.client else None)
    if not outcome.ok:
        app.storage.user[CHILD_MODE] = {**mode, "pin_tries": outcome.pin_tries}
        return _answer(403, outcome.why, ok=False)
    app.storage.user.pop(CHILD_MODE, None)
    return _answer(200, "The phone is yours again.", ok=True, child_id=mode["child_id"])


def install(fastapi_app: FastAPI) -> None:
    fastapi_app.add_api_route("/api/child-mode/leave", leave_child_mode, methods=["POST"])
