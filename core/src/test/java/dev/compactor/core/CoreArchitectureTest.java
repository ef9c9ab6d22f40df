package dev.compactor.core;

import static com.tngtech.archunit.lang.syntax.ArchRuleDefinition.noClasses;

import com.tngtech.archunit.core.domain.JavaClasses;
import com.tngtech.archunit.core.importer.ClassFileImporter;
import com.tngtech.archunit.core.importer.ImportOption;
import com.tngtech.archunit.lang.ArchRule;
import org.junit.jupiter.api.Test;

/** core/ is a pure library: the pipeline plumbing lives in services/, never here. */
class CoreArchitectureTest {

  private static final JavaClasses CORE =
      new ClassFileImporter()
          .withImportOption(ImportOption.Predefined.DO_NOT_INCLUDE_TESTS)
          .importPackages("dev.compactor.core");

  @Test
  void coreDoesNotImportKafkaAvroOrS3() {
    ArchRule rule =
        noClasses()
            .that()
            .resideInAPackage("dev.compactor.core..")
            .should()
            .dependOnClassesThat()
            .resideInAnyPackage(
                "org.apache.kafka..",
                "org.apache.avro..",
                "io.minio..",
                "software.amazon..",
                "org.gaul..",
                "com.amazonaws..")
            .because(
                "core must not import Kafka, Avro or S3: move that code into services/runtime or"
                    + " schemas/ and call core from the stage adapter");
    rule.check(CORE);
  }

  @Test
  void gradientsAreCollectedOnlyThroughAutograd() {
    noClasses()
        .that()
        .resideInAPackage("dev.compactor.core..")
        .and()
        .doNotHaveFullyQualifiedName("dev.compactor.core.train.Autograd")
        .should()
        .callMethod(ai.djl.engine.Engine.class, "newGradientCollector")
        .because(
            "DJL allows one open GradientCollector per JVM; Autograd.collector() makes concurrent"
                + " training jobs wait for it instead of failing")
        .check(CORE);
  }

  @Test
  void coreDoesNotDependOnOtherCompactorModules() {
    noClasses()
        .that()
        .resideInAPackage("dev.compactor.core..")
        .should()
        .dependOnClassesThat()
        .resideInAnyPackage(
            "dev.compactor.schemas..",
            "dev.compactor.runtime..",
            "dev.compactor.services..",
            "dev.compactor.infra..",
            "dev.compactor.cli..")
        .because("core is the bottom of the dependency graph; other modules depend on it")
        .check(CORE);
  }
}
