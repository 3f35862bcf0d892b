"""The classroom load bench (bench/bench_classroom.py) in parts, one job each: the server and its Ray
cluster (server.py), the protocol students (students.py), the Chromium observer (observer.py), the
figures and the JSON (results.py), and the names they share (scenario.py)."""
