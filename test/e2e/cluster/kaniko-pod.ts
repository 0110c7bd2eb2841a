// The Kaniko pod of the cluster's e2e tests (kaniko.test.ts, auth-registry.test.ts).
import { env } from "../support/cluster-env.js";

/** A Kaniko pod building the Dockerfile in ConfigMap `context` and pushing to `destination`. */
export function kanikoPod(ns: string, name: string, destination: string, dockerConfigSecret?: string): object {
  const volumes: object[] = [{ name: "context", configMap: { name: "context" } }];
  const mounts: object[] = [{ name: "context", mountPath: "/workspace" }];
  if (dockerConfigSecret) {
    // kubernetes.io/dockerconfigjson Secret -> /kaniko/.docker/config.json
    volumes.push({
      name: "docker-config",
      secret: { secretName: dockerConfigSecret, items: [{ key: ".dockerconfigjson", path: "config.json" }] },
    });
    mounts.push({ name: "docker-config", mountPath: "/kaniko/.docker" });
  }
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace: ns },
    spec: {
      restartPolicy: "Never",
      containers: [
        {
          name: "kaniko",
          image: env("KCE_KANIKO_IMAGE"),
          imagePullPolicy: "IfNotPresent",
          args: [
            "--dockerfile=/workspace/Dockerfile",
            "--context=dir:///workspace",
            `--destination=${destination}`,
            "--insecure", // the local registries speak plain http
            "--insecure-pull",
          ],
          volumeMounts: mounts,
        },
      ],
      volumes,
    },
  };
}

export const HI_DOCKERFILE = () => `FROM ${env("KCE_BASE_IMAGE")}\nRUN echo hi > /hi\n`;
