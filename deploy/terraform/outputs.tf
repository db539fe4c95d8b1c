output "master_private_ip" {
  description = "Private IP of the master (workers connect to it on zmq_port)."
  value       = aws_instance.master.private_ip
}

output "master_public_ip" {
  description = "Public IP of the master (empty without assign_public_ips)."
  value       = aws_instance.master.public_ip
}

output "worker_private_ips" {
  description = "Private IPs of the workers."
  value       = local.worker_private_ips
}

output "worker_public_ips" {
  description = "Public IPs of the workers (empty strings without assign_public_ips)."
  value       = local.worker_public_ips
}

output "worker_instance_ids" {
  description = "Instance IDs of the workers."
  value       = local.worker_ids
}

output "security_group_ids" {
  description = "Security groups of the master and the workers."
  value = {
    master = aws_security_group.master.id
    worker = aws_security_group.worker.id
  }
}

output "ansible_inventory_path" {
  description = "Path of the rendered Ansible inventory."
  value       = local_file.ansible_inventory.filename
}

output "ssh_master" {
  description = "SSH command for the master."
  value       = "ssh ${var.ssh_user}@${local.master_ssh_host}"
}
