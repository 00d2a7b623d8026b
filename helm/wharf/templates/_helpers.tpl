{{/* Names ---------------------------------------------------------------- */}}

{{- define "wharf.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "wharf.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "wharf.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "wharf.selectorLabels" -}}
app.kubernetes.io/name: {{ include "wharf.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "wharf.labels" -}}
helm.sh/chart: {{ include "wharf.chart" . }}
{{ include "wharf.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: wharf
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "wharf.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "wharf.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "wharf.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* Paths inside the container -------------------------------------------- */}}

{{- define "wharf.configDir" -}}/etc/wharf/config{{- end }}
{{- define "wharf.secretsDir" -}}/etc/wharf/secrets{{- end }}
{{- define "wharf.dataDir" -}}/var/lib/wharf{{- end }}

{{- /* The Secret the chart keeps inline credentials in. */}}
{{- define "wharf.secretName" -}}
{{- include "wharf.fullname" . }}
{{- end }}

{{/* The TLS Secret: the operator's, or the one cert-manager keeps. */}}
{{- define "wharf.tlsSecret" -}}
{{- if .Values.tls.existingSecret }}
{{- .Values.tls.existingSecret }}
{{- else if .Values.tls.certManager.enabled }}
{{- printf "%s-tls" (include "wharf.fullname" .) }}
{{- end }}
{{- end }}

{{/* Which credentials come from where ------------------------------------- */}}

{{- define "wharf.passwordFileSecret" -}}
{{- if .Values.auth.passwordFile.existingSecret }}
{{- .Values.auth.passwordFile.existingSecret }}
{{- else if .Values.auth.passwordFile.content }}
{{- include "wharf.secretName" . }}
{{- end }}
{{- end }}

{{- define "wharf.passwordFileKey" -}}
{{- if .Values.auth.passwordFile.existingSecret }}
{{- .Values.auth.passwordFile.key }}
{{- else }}mqtt-passwords{{- end }}
{{- end }}

{{- define "wharf.apiKeysSecret" -}}
{{- if .Values.auth.apiKeys.existingSecret }}
{{- .Values.auth.apiKeys.existingSecret }}
{{- else if .Values.auth.apiKeys.items }}
{{- include "wharf.secretName" . }}
{{- end }}
{{- end }}

{{- define "wharf.apiKeysKey" -}}
{{- if .Values.auth.apiKeys.existingSecret }}
{{- .Values.auth.apiKeys.key }}
{{- else }}api-keys.yaml{{- end }}
{{- end }}

{{- define "wharf.kafkaSaslSecret" -}}
{{- if .Values.kafka.sasl.enabled }}
{{- if .Values.kafka.sasl.existingSecret }}
{{- .Values.kafka.sasl.existingSecret }}
{{- else }}
{{- include "wharf.secretName" . }}
{{- end }}
{{- end }}
{{- end }}

{{- define "wharf.redisPasswordSecret" -}}
{{- if .Values.redis.auth.existingSecret }}
{{- .Values.redis.auth.existingSecret }}
{{- else if .Values.redis.auth.password }}
{{- include "wharf.secretName" . }}
{{- end }}
{{- end }}

{{- define "wharf.redisPasswordKey" -}}
{{- if .Values.redis.auth.existingSecret }}
{{- .Values.redis.auth.passwordKey }}
{{- else }}redis-password{{- end }}
{{- end }}

{{- /* True ("true") when the chart must render its own Secret. */}}
{{- define "wharf.needsSecret" -}}
{{- $v := .Values }}
{{- if or
      (and $v.auth.passwordFile.content (not $v.auth.passwordFile.existingSecret))
      (and $v.auth.apiKeys.items (not $v.auth.apiKeys.existingSecret))
      (and $v.kafka.sasl.enabled (not $v.kafka.sasl.existingSecret))
      (and $v.redis.auth.password (not $v.redis.auth.existingSecret)) }}true{{- end }}
{{- end }}

{{/* The Wharf configuration file ------------------------------------------ */}}

{{/*
The rendered configuration: .Values.config with the keys the chart owns
(listeners, paths of mounted Secrets, drain timing, Kafka security) set on
top.
*/}}
{{- define "wharf.config" -}}
{{- $v := .Values }}
{{- $secrets := include "wharf.secretsDir" . }}
{{- $cfg := deepCopy (default dict $v.config) }}
{{- $managed := dict }}

{{- $_ := set $managed "node" (dict "data_dir" (include "wharf.dataDir" .)) }}
{{- $_ := set $managed "admin" (dict "listen" (printf "0.0.0.0:%d" (int $v.ports.admin))) }}
{{- $_ := set $managed "drain" (dict
      "duration" (printf "%ds" (int $v.drain.durationSeconds))
      "flush_timeout" (printf "%ds" (int $v.drain.flushTimeoutSeconds))) }}
{{- if $v.drain.serverReference }}
{{- $_ := set $managed.drain "server_reference" $v.drain.serverReference }}
{{- end }}

{{- /* MQTT listeners */}}
{{- $mqtt := dict "listen" (ternary (printf "0.0.0.0:%d" (int $v.ports.mqtt)) "" $v.mqtt.enabled) }}
{{- if $v.tls.enabled }}
{{- $tls := dict
      "listen" (printf "0.0.0.0:%d" (int $v.ports.mqttTls))
      "cert_file" (printf "%s/tls/tls.crt" $secrets)
      "key_file" (printf "%s/tls/tls.key" $secrets)
      "require_client_cert" $v.tls.requireClientCert
      "cn_as_username" $v.tls.cnAsUsername }}
{{- if $v.tls.requireClientCert }}
{{- $_ := set $tls "ca_file" (printf "%s/tls/ca.crt" $secrets) }}
{{- end }}
{{- $_ := set $mqtt "tls" $tls }}
{{- else }}
{{- $_ := set $mqtt "tls" (dict "listen" "") }}
{{- end }}
{{- if include "wharf.passwordFileSecret" . }}
{{- $_ := set $mqtt "password_file" (printf "%s/mqtt/passwords" $secrets) }}
{{- end }}

{{- /* HTTP listeners */}}
{{- $http := dict "listen" (ternary (printf "0.0.0.0:%d" (int $v.ports.http)) "" $v.http.enabled) }}
{{- if and $v.tls.enabled $v.tls.http }}
{{- $_ := set $http "tls" (dict
      "listen" (printf "0.0.0.0:%d" (int $v.ports.https))
      "cert_file" (printf "%s/tls/tls.crt" $secrets)
      "key_file" (printf "%s/tls/tls.key" $secrets)) }}
{{- else }}
{{- $_ := set $http "tls" (dict "listen" "") }}
{{- end }}
{{- if include "wharf.apiKeysSecret" . }}
{{- $_ := set $http "api_keys_file" (printf "%s/http/api-keys.yaml" $secrets) }}
{{- end }}

{{- /* JWT verification material */}}
{{- if $v.auth.jwt.existingSecret }}
{{- $jwt := dict }}
{{- if $v.auth.jwt.secretKey }}{{- $_ := set $jwt "secret_file" (printf "%s/jwt/secret" $secrets) }}{{- end }}
{{- if $v.auth.jwt.publicKeyKey }}{{- $_ := set $jwt "public_key_file" (printf "%s/jwt/public.pem" $secrets) }}{{- end }}
{{- if $v.auth.jwt.jwksKey }}{{- $_ := set $jwt "jwks_file" (printf "%s/jwt/jwks.json" $secrets) }}{{- end }}
{{- if has "mqtt" $v.auth.jwt.applyTo }}{{- $_ := set $mqtt "jwt" (deepCopy $jwt) }}{{- end }}
{{- if has "http" $v.auth.jwt.applyTo }}{{- $_ := set $http "jwt" (deepCopy $jwt) }}{{- end }}
{{- end }}
{{- $_ := set $managed "mqtt" $mqtt }}
{{- $_ := set $managed "http" $http }}

{{- /* Kafka security */}}
{{- $props := dict }}
{{- if and $v.kafka.sasl.enabled $v.kafka.tls.enabled }}
{{- $_ := set $props "security.protocol" "SASL_SSL" }}
{{- else if $v.kafka.sasl.enabled }}
{{- $_ := set $props "security.protocol" "SASL_PLAINTEXT" }}
{{- else if $v.kafka.tls.enabled }}
{{- $_ := set $props "security.protocol" "SSL" }}
{{- end }}
{{- if $v.kafka.sasl.enabled }}
{{- $_ := set $props "sasl.mechanism" $v.kafka.sasl.mechanism }}
{{- $_ := set $props "sasl.username" (printf "${file:%s/kafka/username}" $secrets) }}
{{- $_ := set $props "sasl.password" (printf "${file:%s/kafka/password}" $secrets) }}
{{- end }}
{{- if and $v.kafka.tls.enabled $v.kafka.tls.existingSecret }}
{{- $_ := set $props "ssl.ca.location" (printf "%s/kafka/ca.crt" $secrets) }}
{{- if and $v.kafka.tls.certKey $v.kafka.tls.keyKey }}
{{- $_ := set $props "ssl.certificate.location" (printf "%s/kafka/client.crt" $secrets) }}
{{- $_ := set $props "ssl.key.location" (printf "%s/kafka/client.key" $secrets) }}
{{- end }}
{{- end }}
{{- if $props }}
{{- $_ := set $managed "kafka" (dict "properties" $props) }}
{{- end }}

{{- /* Redis TLS: the switch and the files from redis.tls.existingSecret */}}
{{- if $v.redis.tls.enabled }}
{{- $rtls := dict "enabled" true }}
{{- if $v.redis.tls.existingSecret }}
{{- $_ := set $rtls "ca_file" (printf "%s/redis/ca.crt" $secrets) }}
{{- if and $v.redis.tls.certKey $v.redis.tls.keyKey }}
{{- $_ := set $rtls "cert_file" (printf "%s/redis/client.crt" $secrets) }}
{{- $_ := set $rtls "key_file" (printf "%s/redis/client.key" $secrets) }}
{{- end }}
{{- end }}
{{- if $v.redis.tls.serverName }}{{- $_ := set $rtls "server_name" $v.redis.tls.serverName }}{{- end }}
{{- $_ := set $managed "redis" (dict "tls" $rtls) }}
{{- end }}

{{- $merged := mustMergeOverwrite $cfg $managed }}
{{- /* A merge never overwrites with an empty value: set those explicitly. */}}
{{- $_ := set $merged.mqtt "listen" $mqtt.listen }}
{{- $_ := set $merged.mqtt.tls "listen" $mqtt.tls.listen }}
{{- $_ := set $merged.http "listen" $http.listen }}
{{- $_ := set $merged.http.tls "listen" $http.tls.listen }}
{{- if $v.tls.enabled }}
{{- $_ := set $merged.mqtt.tls "require_client_cert" $v.tls.requireClientCert }}
{{- $_ := set $merged.mqtt.tls "cn_as_username" $v.tls.cnAsUsername }}
{{- end }}
{{- toYaml $merged }}
{{- end }}

{{- /* Grace period: preStop sleep + drain + flush + margin. */}}
{{- define "wharf.terminationGracePeriodSeconds" -}}
{{- if not (kindIs "invalid" .Values.terminationGracePeriodSeconds) }}
{{- .Values.terminationGracePeriodSeconds }}
{{- else }}
{{- add .Values.drain.preStopSleepSeconds .Values.drain.durationSeconds .Values.drain.flushTimeoutSeconds .Values.drain.marginSeconds }}
{{- end }}
{{- end }}

{{- /* Checks that JSON Schema cannot express --------------------------------- */}}
{{- define "wharf.validate" -}}
{{- $v := .Values }}
{{- $cfg := default dict $v.config }}
{{- $kafka := default dict $cfg.kafka }}
{{- $redis := default dict $cfg.redis }}
{{- if and (not $v.embeddedDefaults) (not $kafka.brokers) }}
{{- fail "wharf: set config.kafka.brokers (e.g. \"kafka-0.kafka:9092,kafka-1.kafka:9092\"). Without Kafka the node writes to a local log in the pod that is lost with it; embeddedDefaults=true allows that for demos." }}
{{- end }}
{{- if and (not $v.embeddedDefaults) (not $redis.url) }}
{{- fail "wharf: set config.redis.url (\"sentinel://h1:26379,h2:26379,h3:26379/master\" or \"redis://host:6379\"). Without Redis sessions live in one pod and are lost when it goes; embeddedDefaults=true allows that for demos." }}
{{- end }}
{{- if and $v.tls.enabled (not (include "wharf.tlsSecret" .)) }}
{{- fail "wharf: tls.enabled needs tls.existingSecret, a Secret of type kubernetes.io/tls (tls.crt, tls.key, and ca.crt for client certificates), or tls.certManager.enabled." }}
{{- end }}
{{- if and $v.tls.certManager.enabled (not $v.tls.existingSecret) }}
{{- if not $v.tls.certManager.issuerRef.name }}
{{- fail "wharf: tls.certManager.enabled needs tls.certManager.issuerRef.name (an Issuer or ClusterIssuer)." }}
{{- end }}
{{- if not $v.tls.certManager.dnsNames }}
{{- fail "wharf: tls.certManager.enabled needs tls.certManager.dnsNames (the names clients connect to)." }}
{{- end }}
{{- if not (.Capabilities.APIVersions.Has "cert-manager.io/v1") }}
{{- fail "wharf: tls.certManager.enabled, but the cluster does not serve cert-manager.io/v1: install cert-manager or set tls.existingSecret." }}
{{- end }}
{{- end }}
{{- if and $v.tls.http (not $v.tls.enabled) }}
{{- fail "wharf: tls.http serves HTTPS with the TLS certificate: set tls.enabled and tls.existingSecret too." }}
{{- end }}
{{- if and $v.kafka.sasl.enabled (not $v.kafka.sasl.existingSecret) (or (not $v.kafka.sasl.username) (not $v.kafka.sasl.password)) }}
{{- fail "wharf: kafka.sasl.enabled needs kafka.sasl.existingSecret (keys kafka.sasl.usernameKey / passwordKey) or both kafka.sasl.username and kafka.sasl.password." }}
{{- end }}
{{- if ne (empty $v.kafka.tls.certKey) (empty $v.kafka.tls.keyKey) }}
{{- fail "wharf: kafka.tls.certKey and kafka.tls.keyKey go together (client certificate and its key)." }}
{{- end }}
{{- if and $v.kafka.tls.certKey (not $v.kafka.tls.existingSecret) }}
{{- fail "wharf: kafka.tls.certKey/keyKey name keys of kafka.tls.existingSecret: set it." }}
{{- end }}
{{- if and $v.auth.jwt.existingSecret (not (or $v.auth.jwt.secretKey $v.auth.jwt.publicKeyKey $v.auth.jwt.jwksKey)) }}
{{- fail "wharf: auth.jwt.existingSecret is set but none of auth.jwt.secretKey, publicKeyKey, jwksKey says which key to use." }}
{{- end }}
{{- if and (not $v.mqtt.enabled) (not $v.tls.enabled) (not $v.http.enabled) }}
{{- fail "wharf: every listener is off (mqtt.enabled, tls.enabled, http.enabled): the node would accept nothing." }}
{{- end }}
{{- end }}
