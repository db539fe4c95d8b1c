# Ansible inventory rendered from the fleet (deploy/ansible/inventory/terraform.ini by default).

locals {
  inventory_path = var.inventory_path != "" ? var.inventory_path : "${path.module}/../ansible/inventory/terraform.ini"

  # Ansible connects over public IPs when there are any, else over private IPs (VPN / bastion in admin_cidr).
  master_ssh_host  = var.assign_public_ips ? aws_instance.master.public_ip : aws_instance.master.private_ip
  worker_ssh_hosts = var.assign_public_ips ? local.worker_public_ips : local.worker_private_ips
}

resource "local_file" "ansible_inventory" {
  filename        = local.inventory_path
  file_permission = "0644"

  content = templatefile("${path.module}/templates/inventory.ini.tftpl", {
    name                 = var.name
    ssh_user             = var.ssh_user
    ssh_private_key_file = var.ssh_private_key_file
    zmq_port             = var.zmq_port
    master_ssh_host      = local.master_ssh_host
    master_private_ip    = aws_instance.master.private_ip
    workers = [
      for i, ip in local.worker_private_ips : {
        name       = format("worker-%02d", i + 1)
        ssh_host   = local.worker_ssh_hosts[i]
        private_ip = ip
      }
    ]
  })
}
