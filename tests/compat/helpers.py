"""Assertions shared by the compatibility tests."""

import hashlib

import pytest
from botocore.exceptions import ClientError


def quoted_md5(data: bytes) -> str:
    """The ETag S3 gives a single PUT of `data`."""
    return '"' + hashlib.md5(data).hexdigest() + '"'


def error_of(excinfo) -> tuple[str, int]:
    response = excinfo.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


def expect_error(code: str, status: int, call, *args, **kwargs) -> ClientError:
    """Calls `call` and asserts it fails with this S3 error code and status."""
    with pytest.raises(ClientError) as excinfo:
        call(*args, **kwargs)
    assert error_of(excinfo) == (code, status), excinfo.value.response
    return excinfo.value
