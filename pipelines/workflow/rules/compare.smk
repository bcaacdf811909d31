# compare: niche and state abundance between conditions -> <output>/cohort/compare/.


rule compare:
    input:
        step_inputs("compare"),
    output:
        directory(f"{OUT}/cohort/compare"),
    log:
        "logs/compare/cohort.log",
    threads: res("compare", "threads")
    resources:
        mem_mb=res("compare", "mem_mb"),
        runtime=res("compare", "runtime"),
    params:
        command=step_command("compare"),
    shell:
        "{params.command} > {log} 2>&1"
