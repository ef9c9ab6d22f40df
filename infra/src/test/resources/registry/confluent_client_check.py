"""Drives Compactor's schema registry with Confluent's official Python client (confluent-kafka).

Usage: confluent_client_check.py <input.json> <output.json>
input:  {"url", "user_info", "subject", "schema", "compatible", "incompatible", "topic", "java_bytes_hex"}
output: one entry per check, filled with what the client saw; the Java test asserts on it.
Checks the REST API with SchemaRegistryClient and, when fastavro is installed, the wire format with
Confluent's AvroSerializer/AvroDeserializer against bytes written by Compactor's Java serde.
"""
import json
import sys

from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError


def error_code(call):
    try:
        call()
    except SchemaRegistryError as e:
        return e.error_code
    return None


def main():
    with open(sys.argv[1]) as f:
        given = json.load(f)
    out = {}
    # credentials as Confluent's clients send them: basic auth from USER_INFO
    conf = {"url": given["url"], "basic.auth.user.info": given["user_info"]}
    client = SchemaRegistryClient(dict(conf))
    fresh = SchemaRegistryClient(dict(conf))
    anonymous = SchemaRegistryClient({"url": given["url"]})
    try:
        anonymous.get_subjects()
        out["anonymous_error"] = 0
    except SchemaRegistryError as e:
        out["anonymous_error"] = e.http_status_code
    subject = given["subject"]

    schema_id = client.register_schema(subject, Schema(given["schema"], "AVRO"))
    out["registered_id"] = schema_id
    out["registered_again_id"] = fresh.register_schema(subject, Schema(given["schema"], "AVRO"))
    out["fetched_schema"] = json.loads(fresh.get_schema(schema_id).schema_str)
    latest = fresh.get_latest_version(subject)
    out["latest"] = {"id": latest.schema_id, "version": latest.version, "subject": latest.subject}
    looked_up = fresh.lookup_schema(subject, Schema(given["schema"], "AVRO"))
    out["lookup"] = {"id": looked_up.schema_id, "version": looked_up.version}
    out["versions"] = fresh.get_versions(subject)
    out["subjects"] = fresh.get_subjects()
    out["compatible"] = fresh.test_compatibility(subject, Schema(given["compatible"], "AVRO"))
    out["incompatible"] = fresh.test_compatibility(subject, Schema(given["incompatible"], "AVRO"))
    out["register_incompatible_error"] = error_code(
        lambda: fresh.register_schema(subject, Schema(given["incompatible"], "AVRO")))
    out["unknown_id_error"] = error_code(lambda: fresh.get_schema(987654))
    out["unknown_subject_error"] = error_code(lambda: fresh.get_latest_version("no-such-subject"))
    out["global_compatibility"] = fresh.get_compatibility()
    fresh.set_compatibility(subject_name=subject, level="FULL")
    out["subject_compatibility"] = fresh.get_compatibility(subject)

    try:
        from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
        from confluent_kafka.serialization import MessageField, SerializationContext
    except ImportError as e:
        out["wire_format"] = "skipped: " + str(e)
    else:
        ctx = SerializationContext(given["topic"], MessageField.VALUE)
        decoded = AvroDeserializer(fresh)(bytes.fromhex(given["java_bytes_hex"]), ctx)
        out["python_read_java"] = decoded
        record = dict(decoded)
        record["jobId"] = "written-by-python"
        record["state"] = "RUNNING"
        serializer = AvroSerializer(fresh, given["status_schema"])
        out["python_bytes_hex"] = serializer(record, ctx).hex()
        out["wire_format"] = "checked"

    with open(sys.argv[2], "w") as f:
        json.dump(out, f)


if __name__ == "__main__":
    main()
