// Package kafka connects Sluice to Kafka: the embedded broker that
// `sluice up` and `sluice broker` run, client construction, the topic and
// header names of DESIGN.md section 5, topic creation, and the registry log.
package kafka
