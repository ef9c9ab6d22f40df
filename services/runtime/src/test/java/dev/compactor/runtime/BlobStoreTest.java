package dev.compactor.runtime;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.minio.errors.ErrorResponseException;
import io.minio.errors.ServerException;
import io.minio.messages.ErrorResponse;
import java.io.IOException;
import java.net.ConnectException;
import okhttp3.Protocol;
import okhttp3.Request;
import okhttp3.Response;
import org.junit.jupiter.api.Test;

class BlobStoreTest {
  @Test
  void ioErrorsServerErrorsThrottlingAndTimeoutsAreTransient() {
    assertTrue(BlobStore.isTransient(new ConnectException("Connection refused")));
    assertTrue(BlobStore.isTransient(new IOException("unexpected end of stream")));
    assertTrue(BlobStore.isTransient(http(500, "InternalError")));
    assertTrue(BlobStore.isTransient(http(503, "SlowDown")));
    assertTrue(BlobStore.isTransient(http(429, "TooManyRequests")));
    assertTrue(BlobStore.isTransient(http(408, "RequestTimeout")));
    assertTrue(BlobStore.isTransient(new ServerException("bad gateway", 502, "")));
  }

  @Test
  void clientErrorsAreNot() {
    assertFalse(BlobStore.isTransient(http(403, "AccessDenied")));
    assertFalse(BlobStore.isTransient(http(404, "NoSuchKey")));
    assertFalse(BlobStore.isTransient(http(400, "InvalidArgument")));
    assertFalse(BlobStore.isTransient(new IllegalArgumentException("bad key")));
  }

  private static ErrorResponseException http(int code, String s3Code) {
    Response response =
        new Response.Builder()
            .request(new Request.Builder().url("http://127.0.0.1:9000/b/k").build())
            .protocol(Protocol.HTTP_1_1)
            .code(code)
            .message(s3Code)
            .build();
    return new ErrorResponseException(
        new ErrorResponse(s3Code, "message", "b", "k", "/b/k", "req", "host"), response, "");
  }
}
