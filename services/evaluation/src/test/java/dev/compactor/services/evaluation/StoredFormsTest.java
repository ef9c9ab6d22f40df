package dev.compactor.services.evaluation;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class StoredFormsTest {
  @TempDir Path tmp;

  @Test
  void aLoraAdapterIsListedButIsNoFormOfTheModel() throws Exception {
    Files.write(tmp.resolve("model.safetensors"), new byte[100]);
    Files.write(tmp.resolve("config.json"), new byte[10]);
    Path adapter = Files.createDirectories(tmp.resolve("adapter"));
    // smaller than the model: counted as a form it would become the artifact's size
    Files.write(adapter.resolve("adapter_model.safetensors"), new byte[20]);
    Files.write(adapter.resolve("adapter_config.json"), new byte[5]);
    StoredForms s = StoredForms.scan(tmp);
    assertEquals(
        List.of("peft-lora", "peft-lora", "safetensors", "safetensors"),
        s.files().stream().map(f -> f.getFormat()).sorted().toList());
    assertEquals(List.of(new StoredForms.Form("safetensors", 110)), s.forms());
    assertEquals("safetensors", s.smallest().name());
  }
}
