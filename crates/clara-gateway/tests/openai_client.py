"""The official `openai` Python package, pointed at Clara, as a developer uses it.

Usage: python3 openai_client.py <base url> <api key>

Run by crates/clara-gateway/tests/http_openai_client.rs, which starts Clara off
loopback with that API key and scripts the fake model: the first question gets
"Paris is the capital of France.", the second a streamed "Un, deux, trois.",
later ones an echo.
"""

import json
import sys
import urllib.error
import urllib.request

import openai
from openai import OpenAI


def main() -> None:
    base, key = sys.argv[1], sys.argv[2]
    client = OpenAI(base_url=f"{base}/v1", api_key=key, max_retries=0, timeout=30)

    models = [m.id for m in client.models.list()]
    assert models == ["clara", "clara-low", "clara-mid", "clara-high"], models

    # A whole answer.
    answer = client.chat.completions.create(
        model="clara",
        messages=[
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "What is the capital of France?"},
        ],
        user="pat",
    )
    assert answer.object == "chat.completion", answer
    assert answer.choices[0].message.role == "assistant"
    assert answer.choices[0].message.content == "Paris is the capital of France.", answer
    assert answer.choices[0].finish_reason == "stop"
    assert answer.usage is not None and answer.usage.total_tokens > 0, answer.usage

    # A streamed answer, with usage at the end.
    stream = client.chat.completions.create(
        model="clara-high",
        messages=[{"role": "user", "content": "Count to three in French."}],
        stream=True,
        stream_options={"include_usage": True},
        user="pat",
    )
    pieces, finish, usage = [], None, None
    for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            if choice.delta.content:
                pieces.append(choice.delta.content)
            finish = choice.finish_reason or finish
    assert "".join(pieces) == "Un, deux, trois.", pieces
    assert len(pieces) > 1, "the answer came in pieces"
    assert finish == "stop"
    assert usage is not None and usage.total_tokens > 0

    # Errors arrive as the SDK's own exceptions, with OpenAI's fields.
    try:
        client.chat.completions.create(model="gpt-nope", messages=[{"role": "user", "content": "hi"}])
        raise AssertionError("an unknown model was accepted")
    except openai.NotFoundError as e:
        assert e.code == "model_not_found", e.body
        assert e.param == "model"

    try:
        client.chat.completions.create(model="clara", messages=[])
        raise AssertionError("no messages was accepted")
    except openai.BadRequestError as e:
        assert e.param == "messages", e.body

    wrong = OpenAI(base_url=f"{base}/v1", api_key="sk-not-the-key", max_retries=0, timeout=30)
    try:
        wrong.chat.completions.create(model="clara", messages=[{"role": "user", "content": "hi"}])
        raise AssertionError("a wrong key was accepted")
    except openai.AuthenticationError as e:
        assert e.code == "invalid_api_key", e.body
        assert key not in str(e.body)

    try:
        client.chat.completions.create(
            model="clara", messages=[{"role": "user", "content": "x" * (5 * 1024 * 1024)}]
        )
        raise AssertionError("a huge body was accepted")
    except openai.APIStatusError as e:
        assert e.status_code == 413, e
        assert e.code == "request_too_large", e.body
    except openai.APIConnectionError:
        # The server refused before the client finished sending; also a refusal.
        pass

    # What a hand-written client sends wrong, without the SDK in the way.
    status, body = raw(f"{base}/v1/chat/completions", b'{"model": "clara", "messages": [', key)
    assert status == 400 and body["error"]["code"] == "invalid_json", body
    assert set(body["error"]) == {"message", "type", "param", "code"}, body
    status, body = raw(f"{base}/v1/chat/completions", b'{"model": "clara"}', None)
    assert status == 401 and "API key" in body["error"]["message"], body

    # Still serving, and Clara remembers the conversation: the echo shows the
    # message reached her whole.
    again = client.chat.completions.create(
        model="clara-low", messages=[{"role": "user", "content": "Still there?"}], user="pat"
    )
    assert "Still there?" in again.choices[0].message.content, again
    print("ok")


def raw(url: str, body: bytes, key: str | None) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=body, method="POST")
    request.add_header("Content-Type", "application/json")
    if key:
        request.add_header("Authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


if __name__ == "__main__":
    main()
