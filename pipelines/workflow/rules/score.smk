# score: gene-program scores -> <output>/<sample>/scores/.


rule score:
    input:
        step_inputs("score"),
    output:
        directory(f"{OUT}/{{sample}}/scores"),
    log:
        "logs/score/{sample}.log",
    threads: res("score", "threads")
    resources:
        mem_mb=res("score", "mem_mb"),
        runtime=res("score", "runtime"),
    params:
        command=step_command("score"),
    shell:
        "{params.command} > {log} 2>&1"
