import CairnCore

/// The rule of every JSON endpoint, by method and path below its API prefix (`runs/create`
/// under `/api/2.0/mlflow/`). An endpoint missing here is for administrators only, so a new
/// endpoint is closed until someone decides who may call it. The levels follow MLflow's
/// basic-auth app: reading needs READ, changing a run or an experiment's contents EDIT,
/// deleting and restoring MANAGE; creating an experiment or a registered model any signed-in
/// user (who then manages it).
public enum AccessRules {
    static let readRuns: AccessRule = .all([.run(.read), .run(.read, field: "run_ids")])
    static let readExperiments: AccessRule = .all([.experiment(.read, field: "experiment_id"), .experiment(.read, field: "experiment_ids")])

    /// `/api/2.0/mlflow/…` and `/ajax-api/2.0/mlflow/…`.
    public static let mlflow: [String: AccessRule] = [
        "GET experiments/get-by-name": .experimentName(.read, field: "experiment_name"),
        "POST experiments/create": .signedIn,
        "GET experiments/get": .experiment(.read, field: "experiment_id"),
        "POST experiments/search": .signedIn,
        "GET experiments/search": .signedIn,
        "POST experiments/delete": .experiment(.manage, field: "experiment_id"),
        "POST experiments/restore": .experiment(.manage, field: "experiment_id"),
        "POST experiments/update": .experiment(.edit, field: "experiment_id"),
        "POST experiments/set-experiment-tag": .experiment(.edit, field: "experiment_id"),
        "POST experiments/delete-experiment-tag": .experiment(.edit, field: "experiment_id"),
        "POST experiments/search-datasets": .experiment(.read, field: "experiment_ids"),
        "POST runs/create": .experiment(.edit, field: "experiment_id"),
        "POST runs/update": .run(.edit),
        "GET runs/get": .run(.read),
        "POST runs/delete": .run(.manage),
        "POST runs/restore": .run(.manage),
        "POST runs/log-metric": .run(.edit),
        "POST runs/log-parameter": .run(.edit),
        "POST runs/set-tag": .run(.edit),
        "POST runs/delete-tag": .run(.edit),
        "POST runs/log-batch": .run(.edit),
        "POST runs/log-inputs": .run(.edit),
        "POST runs/outputs": .run(.edit),
        "POST runs/log-model": .run(.edit),
        "POST runs/search": .experiment(.read, field: "experiment_ids"),
        "POST logged-models": .experiment(.edit, field: "experiment_id"),
        "POST logged-models/search": .experiment(.read, field: "experiment_ids"),
        "GET logged-models/:model_id": .loggedModel(.read),
        "PATCH logged-models/:model_id": .loggedModel(.edit),
        "DELETE logged-models/:model_id": .loggedModel(.manage),
        "PATCH logged-models/:model_id/tags": .loggedModel(.edit),
        "DELETE logged-models/:model_id/tags/:tag_key": .loggedModel(.edit),
        "POST logged-models/:model_id/params": .loggedModel(.edit),
        "GET metrics/get-history": .run(.read),
        "GET metrics/get-history-bulk-interval": readRuns,
        "GET metrics/get-history-bulk": .run(.read),
        "GET artifacts/list": .run(.read),

        "POST registered-models/create": .signedIn,
        "GET registered-models/get": .registeredModel(.read),
        "POST registered-models/rename": .registeredModel(.edit),
        "PATCH registered-models/update": .registeredModel(.edit),
        "DELETE registered-models/delete": .registeredModel(.manage),
        "GET registered-models/search": .signedIn,
        "POST registered-models/get-latest-versions": .registeredModel(.read),
        "GET registered-models/get-latest-versions": .registeredModel(.read),
        "POST registered-models/set-tag": .registeredModel(.edit),
        "DELETE registered-models/delete-tag": .registeredModel(.edit),
        "POST registered-models/alias": .registeredModel(.edit),
        "DELETE registered-models/alias": .registeredModel(.edit),
        "GET registered-models/alias": .registeredModel(.read),
        "POST model-versions/create": .all([.registeredModel(.edit), .run(.read)]),
        "GET model-versions/get": .registeredModel(.read),
        "PATCH model-versions/update": .registeredModel(.edit),
        "DELETE model-versions/delete": .registeredModel(.manage),
        "POST model-versions/set-tag": .registeredModel(.edit),
        "DELETE model-versions/delete-tag": .registeredModel(.edit),
        "POST model-versions/transition-stage": .registeredModel(.edit),
        "GET model-versions/search": .signedIn,
        "GET model-versions/get-download-uri": .registeredModel(.read),
        // MLflow's v2 trace calls (older clients): the permission of the trace's experiment.
        "POST traces": .experiment(.edit, field: "experiment_id"),
        "PATCH traces/:trace_id": .trace(.edit),
        "GET traces/:trace_id/info": .trace(.read),
        "GET traces": .experimentsNamed(.read, fields: ["experiment_ids"]),
        "PATCH traces/:trace_id/tags": .trace(.edit),
        "DELETE traces/:trace_id/tags": .trace(.edit),
        "POST traces/delete-traces": .experiment(.manage, field: "experiment_id"),
        "POST traces/link-to-run": .all([.run(.edit), .trace(.edit, field: "trace_ids")]),
        "POST traces/link-prompts": .trace(.edit),
        // Webhooks see every experiment's and model's events: administrators only (as MLflow).
    ]

    /// `/api/3.0/mlflow/…` and `/ajax-api/3.0/mlflow/…`: traces, assessments and evaluation
    /// datasets, as MLflow's basic-auth app checks them: a trace and its assessments have their
    /// experiment's permission; an evaluation dataset has the permission of every experiment it
    /// is linked to (one linked to none is for administrators); searching or creating names its
    /// experiments.
    public static let mlflowV3: [String: AccessRule] = [
        "POST traces": .experiment(.edit, field: "trace.trace_info.trace_location.mlflow_experiment.experiment_id"),
        "GET traces/get": .trace(.read),
        "GET traces/batchGet": .trace(.read, field: "trace_ids"),
        "GET traces/batchGetInfos": .trace(.read, field: "trace_ids"),
        "POST traces/search": .experimentsNamed(.read, fields: ["locations.mlflow_experiment.experiment_id", "experiment_ids"]),
        "POST traces/calculate-filter-correlation": .experimentsNamed(.read, fields: ["experiment_ids"]),
        "POST traces/metrics": .experimentsNamed(.read, fields: ["experiment_ids"]),
        "GET traces/:trace_id": .trace(.read),
        "PATCH traces/:trace_id/tags": .trace(.edit),
        "DELETE traces/:trace_id/tags": .trace(.edit),
        "POST traces/:trace_id/assessments": .trace(.edit),
        "GET traces/:trace_id/assessments/:assessment_id": .trace(.read),
        "PATCH traces/:trace_id/assessments/:assessment_id": .trace(.edit),
        "DELETE traces/:trace_id/assessments/:assessment_id": .trace(.edit),
        "POST datasets/create": .experimentsNamed(.edit, fields: ["experiment_ids"]),
        "POST datasets/search": .experimentsNamed(.read, fields: ["experiment_ids"]),
        "GET datasets/:dataset_id": .dataset(.read),
        "DELETE datasets/:dataset_id": .dataset(.manage),
        "POST datasets/:dataset_id/records": .dataset(.edit),
        "GET datasets/:dataset_id/records": .dataset(.read),
        "PATCH datasets/:dataset_id/tags": .dataset(.edit),
        "DELETE datasets/:dataset_id/tags/:key": .dataset(.edit),
        "GET datasets/:dataset_id/experiment-ids": .dataset(.read),
        "POST datasets/:dataset_id/add-experiments": .all([.dataset(.edit), .experimentsNamed(.edit, fields: ["experiment_ids"])]),
        "POST datasets/:dataset_id/remove-experiments": .dataset(.edit),
    ]

    /// `/api/cairn/v1/…`.
    public static let cairn: [String: AccessRule] = [
        "GET experiments": .signedIn,
        "GET runs/table": readExperiments,
        "GET runs/ids": readExperiments,
        "GET runs/columns": readExperiments,
        "GET runs/groups": readExperiments,
        "GET metrics/series": .all([readRuns, readExperiments]),
        "GET storage": .storeWide,
        "GET dashboard": .storeWide,
        "GET cost": .storeWide,
        "GET report": .storeWide,
        "GET stats/groups": readExperiments,
        "GET stats/compare": .all([readRuns, readExperiments]),
        "GET stats/bands": .all([readRuns, readExperiments]),
        "GET online/report": readExperiments,
        "GET model-versions/history": .registeredModel(.read),
        "GET model-versions/lineage": .registeredModel(.read),
        // Which of these runs this server holds (the model page): only readable ones are named.
        "GET model-versions/runs": .signedIn,
        "GET artifacts": .run(.read),
        // Saved views of the runs page: shared per experiment, so saving one changes what others see.
        "GET experiments/:experiment_id/views": .experiment(.read, field: "experiment_id"),
        "GET experiments/:experiment_id/views/:view_id": .experiment(.read, field: "experiment_id"),
        "POST experiments/:experiment_id/views": .experiment(.edit, field: "experiment_id"),
        "PATCH experiments/:experiment_id/views/:view_id": .experiment(.edit, field: "experiment_id"),
        "DELETE experiments/:experiment_id/views/:view_id": .experiment(.edit, field: "experiment_id"),
        // The caller's own levels on the experiments and models named (the UI hides what would fail).
        "GET permissions": .signedIn,
        // The audit log (GET audit, audit/completeness) is for administrators: no rule here.
    ]

    /// The rule of `method path` in `table`; administrators only when absent.
    public static func rule(_ table: [String: AccessRule], method: String, path: String) -> AccessRule {
        table[method + " " + path] ?? .admin
    }
}
