-- wrk: one 1 KiB POST per request (the body is fixed, the bytes arbitrary).
wrk.method = "POST"
wrk.body = string.rep("x", tonumber(os.getenv("BENCH_POST_BYTES") or "1024"))
wrk.headers["Content-Type"] = "application/octet-stream"
