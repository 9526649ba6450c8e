"""moto's server with one request at a time, and cheap transactions.

moto_server answers requests on parallel threads without locking its
DynamoDB backend, so two TransactWriteItems can both pass a condition that
only one should (DynamoDB serializes them). Job counters depend on that
guarantee, so the local stack runs moto's own app behind a lock.

moto also deep-copies every table a transaction touches, to roll back on
failure: each transaction costs time and memory in proportion to the whole
table. Here only the items a transaction names are saved and restored.
Usage: python moto-server.py -H 127.0.0.1 -p PORT
"""

import argparse
import copy
import threading

import moto.dynamodb.models as dynamodb_models
from moto.dynamodb.models.table import Table

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import run_simple


class _TablesNotCopied:
    """Stands in for the copy module inside moto's DynamoDB backend."""

    @staticmethod
    def deepcopy(value, memo=None):
        return value if isinstance(value, Table) else copy.deepcopy(value, memo)


def _transact_touching_only_named_items(original):
    def transact(self, transact_items):
        saved = []
        for entry in transact_items:
            op = next(iter(entry.values()))
            table = self.get_table(op["TableName"])
            if "Key" in op:
                key = op["Key"]
            else:
                key = {table.hash_key_attr: op["Item"][table.hash_key_attr]}
                if table.range_key_attr is not None:
                    key[table.range_key_attr] = op["Item"][table.range_key_attr]
            before = self.get_item(op["TableName"], key)
            saved.append((op["TableName"], key, copy.deepcopy(before)))
        try:
            return original(self, transact_items)
        except Exception:
            for table_name, key, before in saved:
                if before is None:
                    try:
                        self.delete_item(table_name, key)
                    except Exception:
                        pass
                else:
                    self.get_table(table_name).put_item(before.to_json()["Attributes"])
            raise

    return transact


def main() -> None:
    dynamodb_models.copy = _TablesNotCopied
    backend = dynamodb_models.DynamoDBBackend
    backend.transact_write_items = _transact_touching_only_named_items(backend.transact_write_items)

    parser = argparse.ArgumentParser()
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=5000)
    args = parser.parse_args()

    app = DomainDispatcherApplication(create_backend_app)
    lock = threading.Lock()

    def serialized(environ, start_response):
        with lock:
            # Materialize the body inside the lock: moto's work happens here.
            return list(app(environ, start_response))

    run_simple(args.host, args.port, serialized, threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
