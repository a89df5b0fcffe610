"""The client side of the power-cut test: runs a mixed workload against the
larder in the VM, records every acknowledged operation, cuts the power
(SIGKILL to qemu) at a random moment, and after the next boot checks that
every acknowledged operation is there and nothing is half visible.

The model is the expected state of every key: `bytes` for an object, None
for a deleted one. An operation in flight when the power went may have
happened or not; its key may then hold either state, whole. In a second,
versioned bucket the model is every acknowledged version: each must be
readable by its id, with its bytes, until it is deleted by id; delete
markers come and go on top of them.

    workload.py run   STATE ENDPOINT QEMU_PID SEED
    workload.py check STATE ENDPOINT
"""

import hashlib
import json
import os
import random
import signal
import sys
import threading
import time

import boto3
from botocore.config import Config

BUCKET = "cuts"
VERSIONED = "cuts-versioned"
ACCESS_KEY = os.environ["LARDER_ROOT_ACCESS_KEY"]
SECRET_KEY = os.environ["LARDER_ROOT_SECRET_KEY"]


def client(endpoint):
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        region_name="us-east-1",
        config=Config(
            signature_version="s3v4",
            s3={"addressing_style": "path"},
            retries={"max_attempts": 1},
            connect_timeout=5,
            read_timeout=60,
        ),
    )


def digest(data):
    return hashlib.sha256(data).hexdigest()


def load(path):
    if os.path.exists(path):
        with open(path) as f:
            return json.load(f)
    state = {"objects": {}, "uncertain": {}, "cuts": 0, "acknowledged": 0, "lost": 0, "serial": 0}
    return state


def versions_of(state):
    """Acknowledged versions in the versioned bucket: "key version-id" -> digest."""
    return state.setdefault("versions", {})


def save(path, state):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(state, f)
    os.replace(tmp, path)


def body_for(state, rng):
    state["serial"] += 1
    size = rng.choice([0, 1, 100, 4096, 70_000, 300_000])
    seed = f"{state['serial']}-".encode()
    return (seed * (size // len(seed) + 1))[:size]


def run(path, endpoint, qemu_pid, seed):
    rng = random.Random(seed)
    state = load(path)
    s3 = client(endpoint)
    for bucket in (BUCKET, VERSIONED):
        try:
            s3.create_bucket(Bucket=bucket)
        except s3.exceptions.BucketAlreadyOwnedByYou:
            pass
    s3.put_bucket_versioning(Bucket=VERSIONED, VersioningConfiguration={"Status": "Enabled"})
    objects = state["objects"]
    versions = versions_of(state)
    # Cut after this many acknowledged operations, right after the answer
    # (the moment the old code lost the most), or mid-operation by a timer.
    cut_after = rng.randint(3, 25)
    mid_operation = rng.random() < 0.3
    if mid_operation:
        delay = rng.uniform(0.5, 6.0)
        threading.Timer(delay, lambda: os.kill(qemu_pid, signal.SIGKILL)).start()
    done = 0

    def cut_now():
        """Counts an acknowledged step; cuts the power after the last one."""
        nonlocal done
        done += 1
        if not mid_operation and done >= cut_after:
            os.kill(qemu_pid, signal.SIGKILL)
            return True
        return False

    while True:
        live = [k for k, v in objects.items() if v is not None]
        roll = rng.random()
        if roll >= 0.75:
            # The versioned bucket: a few keys, many versions each.
            key = f"doc-{rng.randint(1, 3)}"
            known = sorted(versions)
            if roll < 0.87 or not known:
                op, keys = "versioned_put", [key]
            elif roll < 0.94:
                op, keys = "versioned_delete", [key]
            else:
                op, keys = "delete_version", [rng.choice(known)]
            if not versioned_step(s3, state, rng, op, keys[0], path):
                break
            if cut_now():
                break
            continue
        if roll < 0.12 and live:
            if not parallel_puts(s3, state, rng, path, live):
                break
            if cut_now():
                break
            continue
        if roll < 0.25 or not live:
            op, keys = "put", [f"obj-{state['serial'] + 1}"]
        elif roll < 0.45:
            op, keys = "overwrite", [rng.choice(live)]
        elif roll < 0.57:
            op, keys = "delete", [rng.choice(live)]
        elif roll < 0.67:
            op, keys = "delete_objects", rng.sample(live, min(len(live), 2))
        else:
            op, keys = "multipart", [f"mp-{state['serial'] + 1}"]
        before = {k: objects.get(k) for k in keys}
        if op in ("put", "overwrite"):
            data = body_for(state, rng)
            after = {keys[0]: digest(data)}
        elif op == "multipart":
            data = body_for(state, rng) * 1 + bytes(5 * 1024 * 1024)
            after = {keys[0]: digest(data + b"tail")}
        else:
            after = {k: None for k in keys}
        # In flight: either state may be found after a cut.
        state["uncertain"] = {k: [before[k], after[k]] for k in keys}
        save(path, state)
        try:
            if op in ("put", "overwrite"):
                s3.put_object(Bucket=BUCKET, Key=keys[0], Body=data)
            elif op == "delete":
                s3.delete_object(Bucket=BUCKET, Key=keys[0])
            elif op == "delete_objects":
                s3.delete_objects(Bucket=BUCKET, Delete={"Objects": [{"Key": k} for k in keys], "Quiet": True})
            else:
                upload = s3.create_multipart_upload(Bucket=BUCKET, Key=keys[0])["UploadId"]
                first = s3.upload_part(Bucket=BUCKET, Key=keys[0], UploadId=upload, PartNumber=1, Body=data)
                second = s3.upload_part(Bucket=BUCKET, Key=keys[0], UploadId=upload, PartNumber=2, Body=b"tail")
                s3.complete_multipart_upload(
                    Bucket=BUCKET,
                    Key=keys[0],
                    UploadId=upload,
                    MultipartUpload={
                        "Parts": [
                            {"PartNumber": 1, "ETag": first["ETag"]},
                            {"PartNumber": 2, "ETag": second["ETag"]},
                        ]
                    },
                )
        except Exception:
            # The power went (or the connection with it): not acknowledged.
            break
        objects.update(after)
        state["acknowledged"] += 1
        state["uncertain"] = {}
        save(path, state)
        if cut_now():
            break
    state["cuts"] += 1
    save(path, state)


def parallel_puts(s3, state, rng, path, live):
    """Eight PUTs at once, new keys and overwrites, so that the server
    commits them in groups (one index transaction and one flush for
    several uploads). Each is acknowledged on its own; one not answered
    leaves its key in either state. False when the power went."""
    objects = state["objects"]
    keys = [f"obj-{state['serial'] + 1 + n}" for n in range(4)] + rng.sample(live, min(len(live), 4))
    digests = {}
    bodies = {}
    for key in keys:
        bodies[key] = body_for(state, rng)
        digests[key] = digest(bodies[key])
    state["uncertain"] = {key: [objects.get(key), digests[key]] for key in keys}
    save(path, state)
    lock = threading.Lock()
    failed = []

    def upload(key):
        try:
            s3.put_object(Bucket=BUCKET, Key=key, Body=bodies[key])
        except Exception:
            with lock:
                failed.append(key)
            return
        with lock:
            objects[key] = digests[key]
            del state["uncertain"][key]
            state["acknowledged"] += 1
            save(path, state)

    threads = [threading.Thread(target=upload, args=(key,)) for key in keys]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return not failed


def versioned_step(s3, state, rng, op, target, path):
    """One operation on the versioned bucket; False when the power went."""
    versions = versions_of(state)
    # A version being deleted by id may be found or not after a cut.
    state["uncertain_version"] = target if op == "delete_version" else None
    save(path, state)
    try:
        if op == "versioned_put":
            data = body_for(state, rng)
            answer = s3.put_object(Bucket=VERSIONED, Key=target, Body=data)
            versions[f"{target} {answer['VersionId']}"] = digest(data)
        elif op == "versioned_delete":
            s3.delete_object(Bucket=VERSIONED, Key=target)
        else:
            key, version = target.split(" ")
            s3.delete_object(Bucket=VERSIONED, Key=key, VersionId=version)
            del versions[target]
    except Exception:
        return False
    state["acknowledged"] += 1
    state["uncertain_version"] = None
    save(path, state)
    return True


def check_versions(s3, state):
    """Every acknowledged version is there, whole; none deleted by id is."""
    lost = []
    versions = versions_of(state)
    uncertain = state.get("uncertain_version")
    for target, expected in sorted(versions.items()):
        key, version = target.split(" ")
        try:
            got = digest(s3.get_object(Bucket=VERSIONED, Key=key, VersionId=version)["Body"].read())
        except Exception as error:
            got = f"error: {error}"
        if target == uncertain and got.startswith("error"):
            del versions[target]
            continue
        if got != expected:
            lost.append(f"{VERSIONED}/{target}: expected {expected}, found {got}")
            del versions[target]
    listed = set()
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=VERSIONED):
        listed.update(f"{v['Key']} {v['VersionId']}" for v in page.get("Versions", []))
    for target in sorted(set(versions) - listed):
        lost.append(f"{VERSIONED}/{target}: acknowledged but not listed")
    state["uncertain_version"] = None
    return lost


def check(path, endpoint):
    state = load(path)
    s3 = client(endpoint)
    objects, uncertain = state["objects"], state["uncertain"]
    lost = []

    def found(key):
        try:
            return digest(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())
        except s3.exceptions.NoSuchKey:
            return None

    keys = set(objects) | set(uncertain)
    for key in sorted(keys):
        allowed = uncertain.get(key, [objects.get(key)])
        got = found(key)
        if got not in allowed:
            lost.append(f"{key}: expected one of {allowed}, found {got}")
        # From here on the model follows what is there, so that a loss is
        # counted once.
        objects[key] = got
    listed = set()
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
        listed.update(item["Key"] for item in page.get("Contents", []))
    for key in sorted(listed - {k for k, v in objects.items() if v is not None}):
        lost.append(f"{key}: listed but not acknowledged")
        objects[key] = found(key)
    for key in sorted({k for k, v in objects.items() if v is not None} - listed):
        lost.append(f"{key}: acknowledged but not listed")
    uploads = s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", [])
    for upload in uploads:
        # An upload whose Complete was cut off is unacknowledged: abort it.
        s3.abort_multipart_upload(Bucket=BUCKET, Key=upload["Key"], UploadId=upload["UploadId"])
    lost += check_versions(s3, state)
    state["uncertain"] = {}
    state["lost"] += len(lost)
    save(path, state)
    for line in lost:
        print(f"LOST after cut {state['cuts']}: {line}", flush=True)
    return 1 if lost else 0


if __name__ == "__main__":
    if sys.argv[1] == "run":
        run(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
    elif sys.argv[1] == "check":
        sys.exit(check(sys.argv[2], sys.argv[3]))
    elif sys.argv[1] == "summary":
        state = load(sys.argv[2])
        print(f"{state['cuts']} cuts, {state['acknowledged']} acknowledged operations checked, {state['lost']} lost")
