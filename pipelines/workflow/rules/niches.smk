# niches: niches, states, resistance niches -> <output>/<sample>/niches/.


rule niches:
    input:
        step_inputs("niches"),
    output:
        directory(f"{OUT}/{{sample}}/niches"),
    log:
        "logs/niches/{sample}.log",
    threads: res("niches", "threads")
    resources:
        mem_mb=res("niches", "mem_mb"),
        runtime=res("niches", "runtime"),
    params:
        command=step_command("niches"),
    shell:
        "{params.command} > {log} 2>&1"
