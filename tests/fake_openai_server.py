#!/usr/bin/python3
"""A small OpenAI-compatible chat-completions server on loopback, for the LLM tests.

  fake_openai_server.py [--port N] --script valid,broken,slow,error500,garbage,... [--then B] [--slow-seconds S]

Prints the port it listens on as the first line of stdout (--port 0, the default, takes a free
one). Each POST to a path ending in /chat/completions takes the next behaviour of the script, in
a cycle (or, with --then B, once through and then B for every later request), so a run against
a fresh server is deterministic:

  valid     the parent program (the first ```asiarch block of the first user message) with one
            real change that still type-checks: the first short convolution's length k becomes
            2 + (request number mod 7) (another k than 4 for most), or, when the program has no
            short convolution, its result passes through tanh; under a MOTIVATION line
  broken    a program with a syntax error (a statement without "=")
  badtype   a program that parses but does not type-check (an unknown operator)
  slow      sleeps --slow-seconds (default 5) before a valid answer: longer than the client waits
  error500  HTTP 500 with a JSON error body
  garbage   HTTP 200 with a body that is not JSON
  endless   HTTP 200 with a body that never ends (until the client hangs up)

A request whose system message asks for a review (the analyst's judge) gets
{"performance": P, "novelty": N, "complexity": C} with scores drawn from the request number, for
"valid"; the other behaviours apply to it as to proposals (broken: a reply with no JSON object).
Every answer carries usage figures: prompt tokens = words of the prompt, completion tokens =
words of the answer. Python 3 standard library only.
"""
import argparse
import http.server
import json
import re
import sys
import threading
import time


class State:
    def __init__(self, script, then, slow_seconds):
        self.script = script
        self.then = then
        self.slow_seconds = slow_seconds
        self.count = 0
        self.lock = threading.Lock()

    def next(self):
        with self.lock:
            n = self.count
            self.count += 1
        if self.then and n >= len(self.script):
            return n, self.then
        return n, self.script[n % len(self.script)]


def parent_program(messages):
    for m in messages:
        if m.get("role") == "user":
            found = re.search(r"```asiarch\n(.*?)```", m.get("content", ""), re.S)
            if found:
                return found.group(1)
            break
    return None


def changed_program(program, n):
    k = 2 + n % 7
    changed, count = re.subn(r"short_conv\((\w+), k=\d+\)", r"short_conv(\1, k=%d)" % k, program, count=1)
    if count:
        return changed
    result = re.search(r"^(\s*)return (\w+)\s*$", program, re.M)
    indent, name = result.group(1), result.group(2)
    return program[: result.start()] + "%s%s_tanh = tanh(%s)\n%sreturn %s_tanh\n" % (indent, name, name, indent, name)


def proposal(messages, n, behaviour):
    program = parent_program(messages) or "program p\n  y = linear(x, out=D)\n  return y\n"
    if behaviour == "broken":
        lines = program.rstrip("\n").split("\n")
        lines.insert(2, "  this line has no equals sign")
        return "MOTIVATION: a broken attempt\n```asiarch\n" + "\n".join(lines) + "\n```\n"
    if behaviour == "badtype":
        program = re.sub(r"\bsilu\(", "wobble(", program, count=1)
        if "wobble(" not in program:
            program = re.sub(r"= linear\(", "= wobble(", program, count=1)
        return "MOTIVATION: an unknown operator\n```asiarch\n" + program + "```\n"
    return ("MOTIVATION: change the short convolution's length to widen the local context (request %d)\n```asiarch\n" % n
            + changed_program(program, n) + "```\n")


def judgement(n):
    return json.dumps({"performance": 3 + n % 6, "novelty": 2 + n % 8, "complexity": 5 + n % 4})


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def send(self, status, body, content_type="application/json"):
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        try:
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout): nothing to answer

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        request = json.loads(self.rfile.read(length) or b"{}")
        if not self.path.endswith("/chat/completions"):
            return self.send(404, json.dumps({"error": "no such path: " + self.path}))
        n, behaviour = self.server.state.next()
        if behaviour == "error500":
            return self.send(500, json.dumps({"error": {"message": "the fake server's scripted internal error"}}))
        if behaviour == "garbage":
            return self.send(200, "<html>this is not JSON", "text/html")
        if behaviour == "endless":
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            try:
                self.wfile.write(b'{"padding": "')
                while True:
                    self.wfile.write(b"x" * 65536)
            except (BrokenPipeError, ConnectionResetError):
                return
        if behaviour == "slow":
            time.sleep(self.server.state.slow_seconds)
        messages = request.get("messages", [])
        judge = any("reviewer" in m.get("content", "") for m in messages if m.get("role") == "system")
        if judge:
            content = "no scores here" if behaviour in ("broken", "badtype") else judgement(n)
        else:
            content = proposal(messages, n, behaviour)
        prompt_words = sum(len(m.get("content", "").split()) for m in messages)
        answer = {
            "id": "fake-%d" % n,
            "object": "chat.completion",
            "model": request.get("model", ""),
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": prompt_words, "completion_tokens": len(content.split()),
                      "total_tokens": prompt_words + len(content.split())},
        }
        self.send(200, json.dumps(answer))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--script", default="valid")
    parser.add_argument("--then", default="")
    parser.add_argument("--slow-seconds", type=float, default=5.0)
    args = parser.parse_args()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    server.state = State(args.script.split(","), args.then, args.slow_seconds)
    print(server.server_address[1], flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
