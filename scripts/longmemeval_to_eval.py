#!/usr/bin/env python3
"""Convert LongMemEval (oracle variant) into Rook's memory-eval format.

Usage:
    python3 scripts/longmemeval_to_eval.py \
        ../shared/data/longmemeval_oracle.json /tmp/lme
    # writes /tmp/lme/corpus.jsonl and /tmp/lme/queries.jsonl, then e.g.
    cargo run --release -p clara-memory --features local-embed --example eval -- \
        --corpus /tmp/lme/corpus.jsonl --queries /tmp/lme/queries.jsonl --k 1,5,10

Why pooled: in the oracle variant each question's haystack holds only its own
evidence sessions, so per question retrieval is trivial. Pooling the turns of all
500 questions into one store gives every query about 10,000 distractors.

Corpus (one JSON object per line):
    {"id": "<session id>#<turn index>", "scope": "longmemeval",
     "text": "<turn content>", "time": "<RFC 3339 session date>",
     "session": "<session id>", "role": "user" | "assistant"}
  `id`, `scope` and `text` are the required eval fields; `time`, `session` and
  `role` are optional ones (documented in crates/clara-memory/src/eval.rs).
  A session shared by several questions is written once (deduplicated by
  session id + turn index), its turns in their order within the session.

Queries (one JSON object per line):
    {"id": "<question id>", "scope": "longmemeval", "text": "<question>",
     "relevant": ["<corpus id>", ...], "time": "<RFC 3339 question date>",
     "type": "<question type>"}
  A query's relevant ids are the turns of its own sessions marked `has_answer`;
  questions with no such turn are skipped (and counted on stderr).

Only the Python standard library is used.
"""

import json
import os
import re
import sys

SCOPE = "longmemeval"

# LongMemEval writes dates as "2023/04/10 (Mon) 17:50".
DATE = re.compile(r"^(\d{4})/(\d{2})/(\d{2}) \(\w+\) (\d{2}):(\d{2})$")


def rfc3339(date):
    """'2023/04/10 (Mon) 17:50' -> '2023-04-10T17:50:00Z' (times are naive; UTC is assumed)."""
    m = DATE.match(date.strip())
    if not m:
        raise ValueError(f"unrecognised LongMemEval date {date!r}")
    y, mo, d, h, mi = m.groups()
    return f"{y}-{mo}-{d}T{h}:{mi}:00Z"


def convert(questions):
    """Returns (corpus rows, query rows, number of skipped questions)."""
    corpus = []
    seen = set()
    queries = []
    skipped = 0
    for q in questions:
        relevant = []
        sessions = zip(q["haystack_session_ids"], q["haystack_dates"], q["haystack_sessions"])
        for session_id, date, turns in sessions:
            for index, turn in enumerate(turns):
                turn_id = f"{session_id}#{index}"
                if turn.get("has_answer"):
                    relevant.append(turn_id)
                if turn_id in seen:
                    continue
                seen.add(turn_id)
                corpus.append(
                    {
                        "id": turn_id,
                        "scope": SCOPE,
                        "text": turn["content"],
                        "time": rfc3339(date),
                        "session": session_id,
                        "role": turn["role"],
                    }
                )
        if not relevant:
            skipped += 1
            continue
        queries.append(
            {
                "id": q["question_id"],
                "scope": SCOPE,
                "text": q["question"],
                "relevant": relevant,
                "time": rfc3339(q["question_date"]),
                "type": q["question_type"],
            }
        )
    return corpus, queries, skipped


def write_jsonl(path, rows):
    with open(path, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False))
            f.write("\n")


def main(argv):
    if len(argv) != 3:
        sys.stderr.write(__doc__)
        return 2
    source, out_dir = argv[1], argv[2]
    with open(source, encoding="utf-8") as f:
        questions = json.load(f)
    corpus, queries, skipped = convert(questions)
    os.makedirs(out_dir, exist_ok=True)
    write_jsonl(os.path.join(out_dir, "corpus.jsonl"), corpus)
    write_jsonl(os.path.join(out_dir, "queries.jsonl"), queries)
    sys.stderr.write(
        f"{len(corpus)} corpus turns, {len(queries)} queries "
        f"({skipped} questions without an evidence turn skipped) -> {out_dir}\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
