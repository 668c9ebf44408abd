#!/usr/bin/env python3
"""The DynamoDB + Secrets Manager emulator (moto), serving one request at a time.

moto's TransactWriteItems is not atomic under concurrent requests: it copies the table,
applies the operations, and on a failed condition restores its copy, which can undo a
transaction another thread committed in between. Real DynamoDB never loses a committed
transaction, so the tests and `make run` serialise requests (connections stay concurrent;
only the handling of each request is exclusive). Same flags as moto_server: -H HOST -p PORT.
"""

import argparse
import threading

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import run_simple


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=5000)
    args = parser.parse_args()
    app = DomainDispatcherApplication(create_backend_app)
    lock = threading.Lock()

    def serial(environ, start_response):
        with lock:
            # The body is produced inside the lock, so no other request runs meanwhile.
            return list(app(environ, start_response))

    run_simple(args.host, args.port, serial, threaded=True)


if __name__ == "__main__":
    main()
