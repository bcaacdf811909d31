# report: the self-contained HTML report -> <output>/cohort/report/.


rule report:
    input:
        step_inputs("report"),
    output:
        directory(f"{OUT}/cohort/report"),
    log:
        "logs/report/cohort.log",
    threads: res("report", "threads")
    resources:
        mem_mb=res("report", "mem_mb"),
        runtime=res("report", "runtime"),
    params:
        command=step_command("report"),
    shell:
        "{params.command} > {log} 2>&1"
