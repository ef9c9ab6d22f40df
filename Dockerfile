# One image recipe for every Compactor service. Build arg SERVICE names the module under services/
# (orchestrator, ingestion, pruning, quantization, distillation, factorization, evaluation,
# publishing) and MAIN_CLASS its entry point; docker-compose.yml sets both for each service.
#
#   docker build --build-arg SERVICE=pruning \
#     --build-arg MAIN_CLASS=dev.compactor.services.pruning.PruningService -t compactor-pruning .

FROM maven:3.9-eclipse-temurin-17 AS build
ARG SERVICE
WORKDIR /src
# Poms first, so the dependency download is cached until a pom changes.
COPY pom.xml ./
COPY core/pom.xml core/
COPY schemas/pom.xml schemas/
COPY infra/pom.xml infra/
COPY services/ services/
COPY cli/pom.xml cli/
COPY bench/pom.xml bench/
COPY e2e-tests/pom.xml e2e-tests/
COPY core/src core/src
COPY schemas/src schemas/src
COPY infra/src infra/src
RUN test -n "$SERVICE" || (echo "build arg SERVICE is required" && exit 1)
# One reactor run builds the module and its siblings and copies the runtime classpath next to it
# (sibling snapshot jars resolve from the reactor, so nothing is installed into ~/.m2).
RUN mvn -B -ntp -q -DskipTests -Dspotless.check.skip=true \
      -pl "services/${SERVICE}" -am \
      package dependency:copy-dependencies -DincludeScope=runtime \
 && mkdir -p /app/lib \
 && cp services/${SERVICE}/target/compactor-${SERVICE}-*.jar /app/app.jar \
 && cp services/${SERVICE}/target/dependency/*.jar /app/lib/

FROM eclipse-temurin:17-jre
ARG SERVICE
ARG MAIN_CLASS
RUN test -n "$MAIN_CLASS" || (echo "build arg MAIN_CLASS is required" && exit 1) \
 && apt-get update && apt-get install -y --no-install-recommends curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home /var/lib/compactor compactor \
 && mkdir -p /var/lib/compactor/work /var/lib/compactor/streams /var/cache/djl \
 && chown -R compactor /var/lib/compactor /var/cache/djl
COPY --from=build /app /app
ENV COMPACTOR_SERVICE=${SERVICE} \
    MAIN_CLASS=${MAIN_CLASS} \
    DJL_OFFLINE=true \
    OMP_WAIT_POLICY=PASSIVE \
    DJL_CACHE_DIR=/var/cache/djl \
    JAVA_OPTS="-XX:MaxRAMPercentage=75 -Dai.djl.offline=true --add-modules jdk.incubator.vector -Dorg.apache.avro.SERIALIZABLE_PACKAGES=dev.compactor,java.lang,java.util,org.apache.avro.util"
USER compactor
WORKDIR /var/lib/compactor
EXPOSE 8080
ENTRYPOINT ["/bin/sh", "-c", "exec java $JAVA_OPTS -cp '/app/app.jar:/app/lib/*' \"$MAIN_CLASS\""]
