"""Calls the CCE simulator through Huawei's official Python SDK (huaweicloudsdkcce).

Run by tests/e2e/sim_sdk.rs with the venv from hack/python-sdk.sh. Reads a JSON job on stdin:

    {"endpoint": "https://127.0.0.1:PORT", "caBundle": "/path/ca.pem" | null,
     "ak": "...", "sk": "...", "projectID": "...",
     "provider": null | "chain" | "pod-identity", "env": {"NAME": "value", ...},
     "calls": [{"op": "show", "clusterID": "...", "workflowID": "..."},
               {"op": "list", "clusterID": "..."},
               {"op": "show-precheck" | "show-upgrade-task", "clusterID": "...", "taskID": "..."},
               {"op": "list-prechecks" | "list-upgrade-tasks" | "show-cluster"
                      | "list-snapshots", "clusterID": "..."},
               {"op": "list-clusters", "query": {"detail": "true", "status": "...",
                                                  "type": "...", "version": "..."}},
               {"op": "autopilot-<any of the above>", ...}]}

Without "provider" the SDK signs with the AK/SK given. With one, the variables of "env" are
set and the SDK finds its credentials itself: "chain" is its default credential provider
chain (OIDC STS, environment with federation, profile, ECS metadata, pod identity), and
"pod-identity" its CCE pod-identity provider (which leaves the project id to the caller).

and prints one JSON object: {"calls": [result, ...]} where a result is either
{"ok": true, "status": 200, "decoded": <the SDK's model, JSON field names>} or
{"ok": false, "exception": "<class>", "status": ..., "errorCode": ..., "errorMsg": ...,
"requestID": ...}. "decoded" is what the SDK made of the answer (enum values it does not
know would come back as {}), not the raw body.
"""

import json
import os
import sys

from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.auth.provider import (
    CredentialProviderChain,
    PodIdentityCredentialProvider,
)
from huaweicloudsdkcore.exceptions import exceptions
from huaweicloudsdkcore.http.http_config import HttpConfig
from huaweicloudsdkcore.utils.http_utils import sanitize_for_serialization
from huaweicloudsdkcce.v3 import (
    CceClient,
    ListAutopilotClusterMasterSnapshotTasksRequest,
    ListAutopilotClustersRequest,
    ListAutopilotPreCheckTasksRequest,
    ListAutopilotUpgradeClusterTasksRequest,
    ListAutopilotUpgradeWorkFlowsRequest,
    ListClusterMasterSnapshotTasksRequest,
    ListClustersRequest,
    ListPreCheckTasksRequest,
    ListUpgradeClusterTasksRequest,
    ListUpgradeWorkFlowsRequest,
    ShowAutopilotClusterRequest,
    ShowAutopilotPreCheckRequest,
    ShowAutopilotUpgradeClusterTaskRequest,
    ShowAutopilotUpgradeWorkFlowRequest,
    ShowClusterRequest,
    ShowPreCheckRequest,
    ShowUpgradeClusterTaskRequest,
    ShowUpgradeWorkFlowRequest,
)

# The diagnostic reads: op -> (SDK method, request class, whether it takes a task id), for
# Standard clusters and their Autopilot twins.
DIAGNOSTICS = {
    "show-precheck": ("show_pre_check", ShowPreCheckRequest, True),
    "list-prechecks": ("list_pre_check_tasks", ListPreCheckTasksRequest, False),
    "show-upgrade-task": ("show_upgrade_cluster_task", ShowUpgradeClusterTaskRequest, True),
    "list-upgrade-tasks": ("list_upgrade_cluster_tasks", ListUpgradeClusterTasksRequest, False),
    "show-cluster": ("show_cluster", ShowClusterRequest, False),
    "list-snapshots": (
        "list_cluster_master_snapshot_tasks",
        ListClusterMasterSnapshotTasksRequest,
        False,
    ),
    "autopilot-show-precheck": ("show_autopilot_pre_check", ShowAutopilotPreCheckRequest, True),
    "autopilot-list-prechecks": (
        "list_autopilot_pre_check_tasks",
        ListAutopilotPreCheckTasksRequest,
        False,
    ),
    "autopilot-show-upgrade-task": (
        "show_autopilot_upgrade_cluster_task",
        ShowAutopilotUpgradeClusterTaskRequest,
        True,
    ),
    "autopilot-list-upgrade-tasks": (
        "list_autopilot_upgrade_cluster_tasks",
        ListAutopilotUpgradeClusterTasksRequest,
        False,
    ),
    "autopilot-show-cluster": ("show_autopilot_cluster", ShowAutopilotClusterRequest, False),
    "autopilot-list-snapshots": (
        "list_autopilot_cluster_master_snapshot_tasks",
        ListAutopilotClusterMasterSnapshotTasksRequest,
        False,
    ),
}


def credentials(job):
    provider = job.get("provider")
    if provider is None:
        return BasicCredentials(job["ak"], job["sk"], job["projectID"])
    os.environ.update(job.get("env", {}))
    if provider == "chain":
        return CredentialProviderChain.get_basic().get_credentials()
    if provider == "pod-identity":
        found = PodIdentityCredentialProvider.get_basic().get_credentials()
        return found.with_project_id(job["projectID"])
    raise ValueError("unknown provider " + provider)


def client(job):
    config = HttpConfig.get_default_config()
    if job.get("caBundle"):
        config.ssl_ca_cert = job["caBundle"]
    return (
        CceClient.new_builder()
        .with_http_config(config)
        .with_credentials(credentials(job))
        .with_endpoints([job["endpoint"]])
        .build()
    )


# ListClusters of each family: op -> (SDK method, request class). Their optional query
# ("query": detail, status, type, version) is set on the request as given.
CLUSTER_LISTS = {
    "list-clusters": ("list_clusters", ListClustersRequest),
    "autopilot-list-clusters": ("list_autopilot_clusters", ListAutopilotClustersRequest),
}


def call(cce, spec):
    if spec["op"] == "show":
        request = ShowUpgradeWorkFlowRequest(
            cluster_id=spec["clusterID"], upgrade_workflow_id=spec["workflowID"]
        )
        return cce.show_upgrade_work_flow(request)
    if spec["op"] == "list":
        return cce.list_upgrade_work_flows(
            ListUpgradeWorkFlowsRequest(cluster_id=spec["clusterID"])
        )
    if spec["op"] == "autopilot-show":
        request = ShowAutopilotUpgradeWorkFlowRequest(
            cluster_id=spec["clusterID"], upgrade_workflow_id=spec["workflowID"]
        )
        return cce.show_autopilot_upgrade_work_flow(request)
    if spec["op"] == "autopilot-list":
        return cce.list_autopilot_upgrade_work_flows(
            ListAutopilotUpgradeWorkFlowsRequest(cluster_id=spec["clusterID"])
        )
    if spec["op"] in CLUSTER_LISTS:
        method, request_class = CLUSTER_LISTS[spec["op"]]
        return getattr(cce, method)(request_class(**spec.get("query", {})))
    if spec["op"] in DIAGNOSTICS:
        method, request_class, with_task = DIAGNOSTICS[spec["op"]]
        request = request_class(cluster_id=spec["clusterID"])
        if with_task:
            request.task_id = spec["taskID"]
        return getattr(cce, method)(request)
    raise ValueError("unknown op " + spec["op"])


def main():
    job = json.load(sys.stdin)
    cce = client(job)
    results = []
    for spec in job["calls"]:
        try:
            response = call(cce, spec)
            results.append(
                {
                    "ok": True,
                    "status": response.status_code,
                    "decoded": sanitize_for_serialization(response),
                }
            )
        except exceptions.ServiceResponseException as e:
            results.append(
                {
                    "ok": False,
                    "exception": type(e).__name__,
                    "status": e.status_code,
                    "errorCode": e.error_code,
                    "errorMsg": e.error_msg,
                    "requestID": e.request_id,
                }
            )
    json.dump({"calls": results}, sys.stdout)


if __name__ == "__main__":
    main()
